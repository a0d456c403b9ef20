"""Testbed environments: text games (TextWorldExpress), reasoning tasks, coding tasks
(HumanEval and a local set), and the shared harness they run on (``envs._harness``)."""
