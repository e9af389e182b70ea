"""The admin panel and JSON API (aiohttp + aiohttp-jinja2): ``admin.app.create_app(config)``."""
