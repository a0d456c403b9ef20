"""One agent with its own memory; ``check=`` is the ground truth of its answers.

python examples/spark_learns.py [--fake]
"""

import _fake

import purpose_agent as pa

spark = pa.Spark("geographer", model=_fake.model(), role="assistant")
spark.teach("Answer with the name only.")
result = spark.run("What is the capital of France?", check=lambda answer: "paris" in answer.lower())
print(result)
print(spark.status()["memory"]["top_promoted"][:1])
