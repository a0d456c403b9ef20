"""swarm, Council, Conversation and AgentTeam on Sparks that share one memory.

python examples/many_agents.py [--fake]
"""

import _fake

import purpose_agent as pa

model = _fake.model()
store = pa.MemoryStore(".purpose_agent/examples.sqlite")
ann = pa.Spark("ann", model=model, role="optimist", memory=store)
ben = pa.Spark("ben", model=model, role="skeptic", memory=store)

for result in pa.swarm(["Name a prime number", "Name a colour"], [ann, ben], max_concurrency=2):
    print(result.agent, "→", result.output if result.ok else result.error)

council = pa.Council([ann, ben]).run("Should we adopt type hints everywhere?", rounds=2)
print(council.synthesis)

chat = pa.Conversation([ann, ben]).run("Let's plan a picnic.", max_turns=4, stop="agreed")
for message in chat.messages:
    print(message)

team = pa.AgentTeam(
    [pa.AgentSpec("coder", expertise=("python", "bug")), pa.AgentSpec("writer", expertise=("docs", "email"))],
    model=model,
    memory=store,
)
print(team.run_task("Fix the bug in my Python script").agent)
print(team.get_learning_report())
