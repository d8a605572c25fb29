"""The product's own rules, registered as server hooks exactly as a deployer's would be."""
