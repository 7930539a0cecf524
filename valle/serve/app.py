"""The HTTP API (FastAPI) and the web page, around one VallE model loaded at start.

Every error is JSON `{"error": message}` with a 4xx that says what to change, or 503
(busy: retry after the seconds in Retry-After) and 504 (took too long). Audio comes
back as 16-bit WAV that carries the watermark and says in its metadata that it is
synthetic; with `stream=true`, as a WAV of open length whose samples follow as they are
made, the synthesis slot held until the stream ends or the client leaves.
"""

import asyncio
import json
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from valle import __version__
from valle.audio import audio_duration, load_prompt, pcm16, wav_bytes, wav_header
from valle.errors import AudioError, ConfigError, DependencyError, TextError
from valle.infer import Synthesis, VallE
from valle.infer.prompt_pick import PreparedPrompt, prepare_prompt
from valle.serve.config import ServeConfig
from valle.serve.limiter import Busy, Limiter
from valle.serve.voices import Voice, VoiceNotFound, VoiceReadOnly, VoiceStore
from valle.watermark import SYNTHETIC_COMMENT

STATIC = Path(__file__).parent / "static"
T = TypeVar("T")


def create_app(config: ServeConfig = ServeConfig(), valle: VallE | None = None) -> FastAPI:
    """The app; `valle` is loaded from `config.model` unless given (tests pass a small one)."""
    model_threads = ThreadPoolExecutor(config.max_concurrent, thread_name_prefix="valle-model")
    server = _Server(config, valle or model_threads.submit(VallE.from_pretrained, config.model, config.device,
                                                           config.dtype).result(), model_threads)
    app = FastAPI(title="valle", version=__version__, description="Zero-shot voice cloning: text + a 3-second prompt -> speech.")
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_page_and_health(app, server)
    _add_synthesis(app, server)
    _add_voices(app, server)
    return app


class _Server:
    """What every route shares: the model, the threads it runs in, the saved voices and the limiter of syntheses.

    The model is loaded and run in the same few threads (`max_concurrent`): PyTorch's CPU
    kernels spread their work over a team of threads that belongs to the calling thread,
    and a model loaded in one thread but run in another took 1.5x as long to its first
    audio on a 2-core machine (270 ms against 170 ms).
    """

    def __init__(self, config: ServeConfig, valle: VallE, model_threads: ThreadPoolExecutor) -> None:
        self.config, self.valle, self.model_threads = config, valle, model_threads
        self.voices = VoiceStore(config.data_dir)
        self.limiter = Limiter(config.max_concurrent, config.max_queue, model_threads)

    async def in_model_thread(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in one of the model's threads, without blocking the server's loop."""
        return await asyncio.wrap_future(self.model_threads.submit(work, *args))

    async def read_prompt(self, upload: UploadFile, text: str | None) -> PreparedPrompt:
        """The uploaded prompt, checked like any prompt, within the size and duration limits; a long one cut to its
        best window."""
        config = self.config
        data = await upload.read(config.max_upload_bytes + 1)
        if len(data) > config.max_upload_bytes:
            raise HTTPException(413, f"the prompt upload is over the limit of {config.max_upload_bytes} bytes "
                                     "(max_upload_bytes): send a shorter recording")
        with tempfile.NamedTemporaryFile(suffix=Path(upload.filename or "prompt").suffix or ".audio") as f:
            f.write(data)
            f.flush()
            try:
                if (seconds := audio_duration(f.name)) > config.max_prompt_seconds:
                    raise AudioError(f"the uploaded prompt is {seconds:.1f} s long; the limit is "
                                     f"{config.max_prompt_seconds:g} s (max_prompt_seconds): send a 3-10 s recording")
                return await self.in_model_thread(
                    lambda: prepare_prompt(f.name, self.valle.codec.sample_rate, text, check=True))
            except AudioError as e:
                message = str(e)
                for named in (f"audio file {f.name}", f"prompt {f.name}", f.name):
                    message = message.replace(named, "the uploaded prompt")
                raise HTTPException(422, message) from None

    async def prompt(self, upload: UploadFile | None, voice_id: str | None,
                     prompt_text: str | None) -> tuple[np.ndarray, str | None, dict | None]:
        """The prompt's samples, transcript and check, from an upload or a saved voice (exactly one of them)."""
        if (upload is None) == (voice_id is None):
            raise HTTPException(422, "give either a prompt recording (prompt) or a saved voice (voice_id)")
        if upload is not None:
            prepared = await self.read_prompt(upload, prompt_text)
            return prepared.samples, prepared.text, prepared.to_dict()
        voice, path = _voice(self.voices, voice_id)
        samples = load_prompt(path, self.valle.codec.sample_rate)  # checked when it was saved
        return samples, prompt_text if prompt_text is not None else voice.transcript, voice.prompt_check

    def busy(self) -> HTTPException:
        config = self.config
        return HTTPException(503, f"busy: {config.max_concurrent} syntheses running and {config.max_queue} waiting; "
                                  f"retry in {config.retry_after_seconds} s",
                             headers={"Retry-After": str(config.retry_after_seconds)})

    async def whole(self, synthesize: Callable[[], Synthesis], headers: dict[str, str]) -> Response:
        """The WAV of `synthesize()`, run in a slot within the timeout."""
        started = time.perf_counter()
        try:
            result = await self.limiter.run(synthesize, self.config.timeout_seconds)
        except Busy:
            raise self.busy() from None
        except TimeoutError:
            raise HTTPException(504, f"the synthesis took over {self.config.timeout_seconds:g} s (timeout_seconds): "
                                     "send shorter text") from None
        except (TextError, AudioError, DependencyError) as e:
            raise HTTPException(422, str(e)) from None
        seconds = time.perf_counter() - started
        return Response(wav_bytes(result.samples, result.sample_rate, SYNTHETIC_COMMENT), media_type="audio/wav",
                        headers={"X-Audio-Seconds": f"{result.seconds:.3f}", "X-Synthesis-Seconds": f"{seconds:.3f}",
                                 "X-Watermarked": str(result.watermarked).lower(), **headers})

    async def streamed(self, start: Callable[[], Iterator[np.ndarray]], headers: dict[str, str]) -> StreamingResponse:
        """A WAV stream of the chunks `start()` yields, holding a slot until it ends or the client leaves.

        Bad input is refused (422) before the first byte; the timeout covers the wait for a slot.
        """
        limiter = self.limiter
        try:
            await limiter.enter(self.config.timeout_seconds)
        except Busy:
            raise self.busy() from None
        except TimeoutError:
            raise HTTPException(504, f"no synthesis slot came free within {self.config.timeout_seconds:g} s "
                                     "(timeout_seconds): retry later") from None
        try:
            chunks = await self.in_model_thread(start)
        except (TextError, AudioError, DependencyError) as e:
            limiter.leave()
            raise HTTPException(422, str(e)) from None
        except BaseException:
            limiter.leave()
            raise

        async def body() -> AsyncIterator[bytes]:
            step: Future | None = None  # the chunk being made in the model's thread
            try:
                yield wav_header(self.valle.codec.sample_rate, None, SYNTHETIC_COMMENT)
                while True:
                    step = self.model_threads.submit(next, chunks, None)
                    if (chunk := await asyncio.wrap_future(step)) is None:
                        break
                    yield pcm16(chunk)  # a client that left cancels this, here or while the chunk is made
            finally:
                if step is not None and not step.done():
                    with anyio.CancelScope(shield=True):  # the generator cannot close while it runs
                        await asyncio.wrap_future(step)
                chunks.close()
                limiter.leave()

        return StreamingResponse(body(), media_type="audio/wav",
                                 headers={"X-Watermarked": "true", "X-Stream": "true", **headers})


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON `{"error": message}`, a validation error phrased as the CLI would."""

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException and the router's own 404/405
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": error.detail}, error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "; ".join(_phrase(e) for e in error.errors())}, 422)


def _add_page_and_health(app: FastAPI, server: _Server) -> None:
    """The web page, and what a client or a monitor reads first: model, load and limits."""
    config, limiter = server.config, server.limiter

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "version": __version__, "model": config.model, "sample_rate": server.valle.codec.sample_rate,
                "languages": list(server.valle.lead.config.languages),  # [] for a model that takes no language input
                "sampling": server.valle.sampling.to_dict(),  # what a request that leaves it out gets
                "running": limiter.running, "queued": limiter.admitted - limiter.running,
                "max_concurrent": config.max_concurrent, "max_queue": config.max_queue,
                "limits": {"max_text_chars": config.max_text_chars, "max_upload_bytes": config.max_upload_bytes,
                           "max_prompt_seconds": config.max_prompt_seconds, "timeout_seconds": config.timeout_seconds}}


def _add_synthesis(app: FastAPI, server: _Server) -> None:
    """Speech from text and a prompt (whole or streamed), and the check of a prompt before any synthesis."""
    config, valle = server.config, server.valle

    @app.post("/v1/synthesize", response_class=Response,
              responses={200: {"content": {"audio/wav": {}}, "description": "watermarked 16-bit WAV; the prompt's check "
                               "(as POST /v1/prompt/check answers) in the X-Prompt-Check header"}})
    async def synthesize(
        text: Annotated[str, Form(description="what to say")] = "",
        prompt: Annotated[UploadFile | None, File(description="a 3-10 s recording of the voice (wav, flac, ogg, mp3)")] = None,
        voice_id: Annotated[str | None, Form(description="a saved or bundled voice instead of a prompt upload")] = None,
        prompt_text: Annotated[str | None, Form(description="what the prompt says (recognised when left out)")] = None,
        temperature: Annotated[float | None, Form(ge=0, le=10, allow_inf_nan=False,
                                                  description="the model's own (in /health) when left out")] = None,
        top_k: Annotated[int | None, Form(ge=0, le=100000)] = None,
        top_p: Annotated[float | None, Form(gt=0, le=1, allow_inf_nan=False)] = None,
        seed: Annotated[int | None, Form(ge=0, le=2**32 - 1)] = None,
        stream: Annotated[bool, Form(description="answer with a WAV stream (open length) as the audio is made")] = False,
        language: Annotated[str, Form(max_length=32, description="the text's language (an espeak-ng code; a model "
                                      "trained on several lists its own in /health)")] = "en-us",
        prompt_language: Annotated[str | None, Form(max_length=32, description="the prompt's language, when it is "
                                                    "not the text's (default: detected from the prompt's words by a "
                                                    "multilingual model, else the text's)")] = None,
    ) -> Response:
        if not text.strip():
            raise HTTPException(422, "the text is empty: give the words to speak")
        try:
            valle.language_ids(language, prompt_language or language)
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None
        if len(text) > config.max_text_chars:
            raise HTTPException(413, f"the text has {len(text)} characters; the limit is {config.max_text_chars} "
                                     "(max_text_chars): send it in parts")
        samples, prompt_text, check = await server.prompt(prompt, voice_id, prompt_text)
        try:
            sampling = valle.sampling.updated(temperature=temperature, top_k=top_k, top_p=top_p)
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None
        checked = {"X-Prompt-Check": json.dumps(check, separators=(",", ":"))} if check else {}
        languages = {"language": language, "prompt_language": prompt_language}
        if stream:
            return await server.streamed(lambda: valle.stream(text, samples, prompt_text, sampling, seed, **languages), checked)
        return await server.whole(lambda: valle.synthesize(text, samples, prompt_text, sampling, seed, **languages), checked)

    @app.post("/v1/prompt/check")
    async def check_prompt(
        prompt: Annotated[UploadFile, File(description="a recording to prompt with")],
        transcript: Annotated[str | None, Form(max_length=1000, description="what the recording says")] = None,
    ) -> dict:
        """What in the recording would spoil a cloned voice (`valle prompt check`), before any synthesis."""
        return (await server.read_prompt(prompt, transcript)).to_dict()


def _add_voices(app: FastAPI, server: _Server) -> None:
    """Saved voices: a checked prompt kept under a name, to synthesise with by its id."""
    voices = server.voices

    @app.post("/v1/voices", status_code=201)
    async def add_voice(
        prompt: Annotated[UploadFile, File(description="a 3-10 s recording of the voice")],
        name: Annotated[str | None, Form(max_length=100, description="the default: the upload's file name")] = None,
        transcript: Annotated[str | None, Form(max_length=1000, description="what the recording says")] = None,
    ) -> Voice:
        prepared = await server.read_prompt(prompt, transcript)
        name = (name or "").strip() or Path(prompt.filename or "").stem or "my voice"
        return voices.add(prepared.samples, server.valle.codec.sample_rate, name, prepared.text, prepared.to_dict())

    @app.get("/v1/voices")
    async def list_voices() -> list[Voice]:
        return voices.list()

    @app.delete("/v1/voices/{voice_id}", status_code=204)
    async def delete_voice(voice_id: str) -> Response:
        try:
            voices.delete(voice_id)
        except VoiceNotFound as e:
            raise HTTPException(404, str(e)) from None
        except VoiceReadOnly as e:
            raise HTTPException(403, str(e)) from None
        return Response(status_code=204)


def _phrase(error: dict) -> str:
    """A request validation error as the CLI would say it: the field, what it must be, what came."""
    field = ".".join(map(str, error["loc"][1:])) or "the request"
    limits = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    context = error.get("ctx") or {}
    if error["type"] == "missing":
        return f"{field} is missing: send it as a form field"
    if error["type"] in limits:
        bound = next(iter(context.values()), "")
        return f"{field} must be {limits[error['type']]} {bound:g} (got {error.get('input')!r})"
    if error["type"] == "string_too_long":
        return f"{field} is too long: at most {context.get('max_length')} characters"
    return f"{field}: {error['msg'].lower()} (got {error.get('input')!r})"


def _voice(voices: VoiceStore, voice_id: str | None) -> tuple[Voice, Path]:
    try:
        return voices.get(voice_id or "")
    except VoiceNotFound as e:
        raise HTTPException(404, str(e)) from None
