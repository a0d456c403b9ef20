from purpose_agent.cli import main

raise SystemExit(main())
