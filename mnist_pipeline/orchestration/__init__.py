"""What the flows need from Prefect besides tasks: servers, task runners, caching and result storage, events, the training slot, waiting for approval, console errors."""
