"""Daily reports of a site: the day's numbers (`daily`), one self-contained printable HTML page (`render`), signed
report links (`links`) and the daily digest pushed to chat robots (`digest`, `scheduler`)."""
