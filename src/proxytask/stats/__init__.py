"""Pure statistics: arrays in, frozen results out, with ``n`` and a reason when undefined."""
