"""The code location: one instance of `DemandForecastComponent`, configured from the environment
(`ZEOS_LAKE`, `ZEOS_DEPLOYMENT`, `ZEOS_FIRST_WEEK`, S3 and AWS variables: docs/configuration.md).
"""

from .component import DemandForecastComponent

defs = DemandForecastComponent.from_environment().build_definitions()
