"""Flow parameter types with their bounds and choices. Prefect validates them before a run starts
(from Python, the CLI, the API or the UI form); descriptions come from each flow's docstring."""

from typing import Annotated, Literal, Optional

from pydantic import Field

Model = Literal["baseline", "batchnorm", "deeper"]
Folds = Annotated[int, Field(ge=2)]
Epochs = Annotated[int, Field(ge=1)]
BatchSize = Annotated[int, Field(ge=1)]
LearningRate = Annotated[float, Field(gt=0)]
Scaling = Literal["unit", "center", "standardize"]
Limit = Optional[Annotated[int, Field(ge=10)]]
Workers = Optional[Annotated[int, Field(ge=1)]]
Runner = Literal["process", "thread", "dask"]
DaskAddress = Optional[Annotated[str, Field(pattern=r"^(\w+://)?\S+:\d+$")]]
