"""The code location: composes assets, jobs and resources into one `Definitions`."""

import dagster as dg

from .pipeline.demand_features import demand_features
from .pipeline.demand_forecast import demand_forecast
from .pipeline.environment import lake_root
from .pipeline.jobs import weekly_forecast_job
from .pipeline.resources import LakeResource
from .pipeline.sales_history import sales_history

defs = dg.Definitions(
    assets=[sales_history, demand_features, demand_forecast],
    jobs=[weekly_forecast_job],
    resources={"lake": LakeResource(root=lake_root())},
)
