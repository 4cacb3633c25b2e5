"""The survey register (摸底): every hardship family surveyed in a campaign, and its import."""
