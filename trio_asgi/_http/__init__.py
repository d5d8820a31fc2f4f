"""What every HTTP version shares: ASGI scope builders, app-message validation, and one
request's ASGI ``receive``/``send`` rules (the exchange). Nothing here knows HTTP/1.1."""
