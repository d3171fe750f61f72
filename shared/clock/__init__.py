"""The billing clock: ticks from the wall clock for live tenants, a test clock for sandbox tenants."""
