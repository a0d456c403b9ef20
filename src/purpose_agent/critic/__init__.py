"""The critic: the Purpose Function Φ, which scores a state toward a purpose
(``critic.purpose_function``), with its anomaly checks, calibration examples from ground
truth, rubrics, agreement and consistency checks, and human score overrides."""
