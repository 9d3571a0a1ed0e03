"""A conversation's follow-up made standalone before the ladder (the "contextualize" step).

A chat sends the whole conversation; the cache is keyed by questions. The last user message goes
down the ladder as it is when it stands alone (no earlier turns, or nothing in it refers back);
otherwise the generation model rewrites it into a standalone question first (worker/replies.py),
and that question is what is looked up, cached and reported (x-precache-question).
"""

import hashlib
import json
import re

# Words by which a message points back into the conversation ("how long does *that* take?").
REFERRING = frozenset(
    "it its it's itself that this these those they them their theirs there he him his she her hers "
    "one ones same former latter above previous such".split())
# Openings of a message that continues the one before ("and for students?", "what about refunds?").
OPENERS = ("and ", "and?", "but ", "or ", "so ", "also", "then ", "what about", "how about", "why not", "why?",
           "what else", "anything else", "more ", "tell me more")
MIN_STANDALONE_WORDS = 3  # "why?", "how long?": too short to stand alone after earlier turns
HISTORY_TURNS = 6  # the turns before the last message that the rewrite sees (and that key its cache)
TURN_CHARS = 400  # an earlier turn is cut to this many characters in the rewrite's prompt

REWRITE_SYSTEM = ("You rewrite the last question of a conversation so that it can be understood without the "
                  "conversation: replace words such as it, that or they by what they refer to. Reply with the "
                  "rewritten question only.")
EXAMPLE = [
    {"role": "user", "content": "Conversation:\nUser: How do I reset my password?\nAssistant: Open Settings, "
     "choose Security, then Reset password.\n\nLast question: How long does that take?"},
    {"role": "assistant", "content": "How long does it take to reset my password?"},
    {"role": "user", "content": "Conversation:\nUser: What is a Roth IRA?\nAssistant: A retirement account "
     "funded with taxed income.\n\nLast question: Can I open one for my child?"},
    {"role": "assistant", "content": "Can I open a Roth IRA for my child?"},
]


def earlier_turns(messages: list[dict]) -> list[dict]:
    """Return the user and assistant turns before the last message (system messages are instructions)."""
    return [m for m in messages[:-1] if m["role"] in ("user", "assistant")][-HISTORY_TURNS:]


def needs_rewrite(messages: list[dict]) -> bool:
    """Tell whether the last message needs the conversation to be understood."""
    if not earlier_turns(messages):
        return False
    text = messages[-1]["content"].strip().lower()
    words = re.findall(r"[a-z0-9']+", text)
    return (len(words) < MIN_STANDALONE_WORDS or text.startswith(OPENERS)
            or any(word in REFERRING for word in words))


def context_hash(messages: list[dict]) -> str:
    """Key of a rewrite: the earlier turns it sees and the message."""
    seen = [(m["role"], m["content"]) for m in earlier_turns(messages)] + [messages[-1]["content"]]
    return hashlib.sha256(json.dumps(seen).encode()).hexdigest()[:32]


def rewrite_chat(messages: list[dict]) -> list[dict]:
    """Return the chat asking the model for the standalone form of the last message."""
    lines = [f"{m['role'].capitalize()}: {_cut(m['content'])}" for m in earlier_turns(messages)]
    prompt = "Conversation:\n" + "\n".join(lines) + f"\n\nLast question: {messages[-1]['content'].strip()}"
    return [{"role": "system", "content": REWRITE_SYSTEM}, *EXAMPLE, {"role": "user", "content": prompt}]


def standalone_from(generated: str, messages: list[dict]) -> str:
    """Return the model's rewrite when it looks like one question; else the previous question and the
    message together (longer, but it stands alone)."""
    line = next((line.strip() for line in generated.splitlines() if line.strip()), "")
    line = re.sub(r"^(standalone|rewritten)?\s*question\s*:\s*", "", line, flags=re.I).strip(" \"'`*")
    last = messages[-1]["content"].strip()
    words = re.findall(r"\w+", line)
    # What the message asks about must survive the rewrite ("what about shipping?" keeps "shipping").
    asked_about = [w for w in re.findall(r"[a-z']+", last.lower()) if len(w) >= 4 and w not in REFERRING]
    kept = sum(w in line.lower() for w in asked_about) * 2 >= len(asked_about)
    if (MIN_STANDALONE_WORDS <= len(words) <= 60 and kept and line.lower() != last.lower()
            and "conversation" not in line.lower()):
        return line
    asked = [m["content"].strip() for m in earlier_turns(messages) if m["role"] == "user"]
    return f"{asked[-1]} {last}" if asked else last


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TURN_CHARS else text[:TURN_CHARS].rsplit(" ", 1)[0] + " ..."
