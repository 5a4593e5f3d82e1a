"""The colours umask's figures share: a hit is the same green on every page."""

GREEN = "#2e9e44"  # a target reached: a mask on target, the attack's target class
RED = "#d1343a"  # a miss, and the photo after the attack
BLUE = "#1f77b4"  # a plain curve, and the photo before the attack (plotly's first colour)
