"""Hooks into Transformers' `generate`: stop a batch when an event is set, stream every row's new text."""

import torch
from transformers import StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from worker.backends.base import OnToken


class WhenSet(StoppingCriteria):
    """Stop every row of a batch before its next token once an event is set."""

    def __init__(self, event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class BatchStreamer(BaseStreamer):
    """Hand each row's new text to `on_token` as `generate` produces it, for a whole batch (Transformers'
    own streamers take one row). The first `put` is the prompt; each later one holds a token per row."""

    def __init__(self, tokenizer, end_ids: set[int], on_token: OnToken, rows: int):
        self.tokenizer, self.end_ids, self.on_token = tokenizer, end_ids, on_token
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.sent, self.done, self.prompt_seen = [""] * rows, [False] * rows, False

    def put(self, value) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for i, token in enumerate(value.reshape(-1).tolist()):
            if self.done[i] or token in self.end_ids:
                self.done[i] = True  # the rest of a finished row is padding
                continue
            self.tokens[i].append(token)
            self._hand_on(i)

    def end(self) -> None:
        """Hand on what was held back at the end of each row."""
        for i in range(len(self.tokens)):
            self._hand_on(i, final=True)

    def _hand_on(self, i: int, final: bool = False) -> None:
        text = self.tokenizer.decode(self.tokens[i], skip_special_tokens=True)
        # Hold back a piece that ends inside a character (until the end), or that changed text already sent.
        if (final or not text.endswith("\ufffd")) and text.startswith(self.sent[i]) and len(text) > len(self.sent[i]):
            self.on_token(i, text[len(self.sent[i]):])
            self.sent[i] = text
