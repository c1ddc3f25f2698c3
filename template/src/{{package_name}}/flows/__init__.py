"""The campaign flows this project runs."""
