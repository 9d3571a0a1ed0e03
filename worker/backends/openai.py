"""openai backend: any OpenAI-compatible chat completions endpoint (vLLM, TGI, Ollama, llama.cpp's server, hosted APIs).

Plain httpx rather than the `openai` client: one POST is all it needs, and the retry policy must be
exactly "transient errors only" (the client also retries 408 and 409 and takes its own deadline
decisions). A batch is sent as concurrent requests, so a server that batches (vLLM, TGI) can.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from worker.backends.base import (NEUTRAL_MEAN_LOGPROB, Backend, BackendError, BackendUnavailable, Generation, Message,
                                  one_line)

log = logging.getLogger(__name__)

BACKOFF_S = 0.5  # pause before the first retry; doubles with each further one
MAX_BACKOFF_S = 8.0


def transient(status: int) -> bool:
    """Tell whether an HTTP status is worth a retry: rate limited or a server-side failure."""
    return status == 429 or status >= 500


class OpenAIBackend(Backend):
    """Generate through POST {base_url}/chat/completions, greedy (temperature 0) unless asked to sample."""

    name = "openai"

    def load(self) -> None:
        """Build the HTTP client; the endpoint may come up later, so it is only probed, never required."""
        key = self.settings.llm_api_key.get_secret_value()
        self.url = self.settings.llm_base_url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.url + "/",
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=httpx.Timeout(self.settings.llm_timeout_s),
        )
        try:
            self.client.get("models", timeout=min(5.0, self.settings.llm_timeout_s)).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("OpenAI-compatible endpoint %s does not answer yet: %s", self.url, _reason(exc))

    def generate(self, chats: list[list[Message]], max_new_tokens: int, temperature: float = 0.0,
                 seed: int = 0, on_token=None, stop=None) -> list[Generation]:
        """Answer the chats with concurrent requests, results in order (not streamed: `on_token` is not called,
        each answer arrives whole; each request is bounded by its HTTP timeout, not by `stop`)."""
        if len(chats) == 1:
            return [self._complete(chats[0], max_new_tokens, temperature, seed)]
        with ThreadPoolExecutor(max_workers=min(len(chats), self.settings.llm_max_batch)) as pool:
            return list(pool.map(lambda chat: self._complete(chat, max_new_tokens, temperature, seed), chats))

    def close(self) -> None:
        """Close the connection pool."""
        if getattr(self, "client", None) is not None:
            self.client.close()
            self.client = None

    def _complete(self, chat: list[Message], max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> Generation:
        body = {"model": self.settings.llm_model, "messages": chat, "max_tokens": max_new_tokens,
                "temperature": temperature}
        if temperature > 0:
            body["seed"] = seed  # honoured by vLLM, llama.cpp's server and OpenAI; ignored elsewhere
        if self.settings.llm_logprobs:
            body |= {"logprobs": True, "top_logprobs": 1}  # llama.cpp's server returns none without top_logprobs
        data = self._post("chat/completions", body)
        try:
            return _generation(data)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BackendError(f"unexpected response from {self.url}/chat/completions: {exc!r}") from None

    def _post(self, path: str, body: dict) -> dict:
        """POST with bounded retries on transient errors; raise BackendError saying why it gave up."""
        tries = self.settings.llm_max_retries + 1
        for attempt in range(tries):
            try:
                response = self._post_once(path, body)
            except httpx.TransportError as exc:  # connection refused or reset, timeouts
                error, wait = _reason(exc), None
            else:
                if response.status_code < 400:
                    return response.json()
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                if not transient(response.status_code):
                    raise BackendError(f"{self.url}/{path} refused the request: {error}")
                wait = _retry_after(response)
            if attempt + 1 < tries:
                self._pause(path, error, attempt, tries, wait)
        # Unreachable, busy or failing on its side: the job retries later (PRECACHE_GENERATION_MAX_RETRIES,
        # backoff) rather than failing every asker at once while an endpoint restarts.
        raise BackendUnavailable(f"{self.url}/{path} failed after {tries} tries: {error}")

    def _pause(self, path: str, error: str, attempt: int, tries: int, wait: float | None) -> None:
        """Wait before the next try: what the server asked for, else an exponential backoff."""
        pause = wait if wait is not None else min(BACKOFF_S * 2**attempt, MAX_BACKOFF_S)
        log.warning("%s/%s failed (%s); retry %d of %d in %.1f s", self.url, path, error, attempt + 1,
                    tries - 1, pause)
        time.sleep(pause)

    def _post_once(self, path: str, body: dict) -> httpx.Response:
        # httpx timeouts bound each socket wait; the deadline bounds the whole call, trickled bodies included.
        deadline = time.monotonic() + self.settings.llm_timeout_s
        with self.client.stream("POST", path, json=body) as response:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"no complete answer within {self.settings.llm_timeout_s} s")
        return httpx.Response(response.status_code, headers=response.headers, content=b"".join(chunks))


def _generation(data: dict) -> Generation:
    choice = data["choices"][0]
    usage = data.get("usage") or {}
    tokens = (choice.get("logprobs") or {}).get("content") or []
    logprobs = [float(t["logprob"]) for t in tokens]
    return Generation(
        text=(choice["message"].get("content") or "").strip(),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", len(logprobs))),
        mean_logprob=sum(logprobs) / len(logprobs) if logprobs else NEUTRAL_MEAN_LOGPROB,
        finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
    )


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(float(response.headers["retry-after"]), MAX_BACKOFF_S)
    except (KeyError, ValueError):
        return None


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {one_line(exc)}"
