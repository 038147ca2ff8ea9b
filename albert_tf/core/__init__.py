"""The task layer: `Task` interface, trainer, driver, best-checkpoint tracking, strategies, flags."""
