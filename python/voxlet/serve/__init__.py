"""`voxlet serve`: one loaded model for many clients, over the protocols they already speak.

    HTTP (Starlette on uvicorn): OpenAI-compatible POST /v1/audio/speech (audio or SSE),
    GET /v1/models, /v1/voices, /health, /metrics; WebSocket /v1/audio/speech/stream.

Needs the `serve` extra (starlette, uvicorn). Binds to loopback unless told otherwise.
"""

from voxlet.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
