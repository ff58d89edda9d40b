"""Reports (issue 13): read-only selectors over the timeline, conversations, resolutions and CSAT
answers. ``selectors.py`` computes them with aggregate SQL on indexed columns; the console
(``engagement/console/report_views.py``) and the API (``engagement/api/reports_api.py``) render them."""
