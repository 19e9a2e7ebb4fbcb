"""What a storm run can be asked for: the training engines and the years the Storm Events
database can hold. Light on purpose: `mlwf storm ...`'s arguments are checked with it before
the ML stack is imported."""

ENGINES = ("auto", "sklearn", "dask-ml")
FIRST_YEAR, LAST_YEAR = 1950, 2100  # the database starts in 1950
