"""The quick start: a team from a description, a run, a lesson, a better run, the status.

python examples/quickstart.py          # on the embedded model
python examples/quickstart.py --fake   # on a stand-in model (seconds)
"""

import _fake

import purpose_agent as pa

team = pa.purpose("Help me write Python code", model=_fake.model())
print(team.run("Write a fibonacci function"))
team.teach("Always add type hints")
print(team.run("Write a fibonacci function"))  # the lesson is in the coder's prompt now
print(team.status())
