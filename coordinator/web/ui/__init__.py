"""The web UI: server-rendered pages, each with a JSON twin (`?format=json`) holding the same data,
and one small script (static/app.js) that keeps them live."""
