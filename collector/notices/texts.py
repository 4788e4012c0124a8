"""What staff read on their intercom: one template per notice kind, in English or Chinese.

Templates are ``str.format`` strings with named fields only (the fields of
each kind are in :data:`FIELDS`); a deployment may override any of them in
``[notices.texts]``. Values are always strings, and the finished text is cut
to the contract's ``notify`` text bound, so no template or value can produce a
command the contract refuses. Staff ids may appear: staff read these, not
customers.
"""

from __future__ import annotations

import string
from typing import Final, Literal, get_args

from branchwatch.contract.ids import ShortText
from collector.notices.state import NoticeKind

Language = Literal["en", "zh"]
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)

# The contract's bound on a notify text (characters), read from its type.
MAX_TEXT: Final[int] = next(meta.max_length for meta in get_args(ShortText)[1:])

FIELDS: Final[dict[NoticeKind, tuple[str, ...]]] = {
    "post_empty": ("post", "post_name", "empty_for"),
    "unsatisfied": ("counter", "teller", "ticket", "waited"),
    "queue_long": ("service", "waiting", "oldest", "counters"),
}

TEMPLATES: Final[dict[Language, dict[NoticeKind, str]]] = {
    "en": {
        "post_empty": "Post {post} ({post_name}) has been empty for {empty_for}: please cover it.",
        "unsatisfied": (
            "Unsatisfied customer at counter {counter} (teller {teller}), ticket {ticket}, "
            "waited {waited}: please speak to them before they leave."
        ),
        "queue_long": "Open another {service} counter: {waiting} waiting, oldest {oldest}.",
    },
    "zh": {
        "post_empty": "{post}号岗（{post_name}）已空岗{empty_for}，请补位。",
        "unsatisfied": (
            "{counter}号窗口（柜员{teller}）客户评价不满意，票号{ticket}，等候{waited}，"
            "请在客户离开前沟通。"
        ),
        "queue_long": "请加开{service}窗口：{waiting}人等候，最久已等{oldest}。",
    },
}

# How a service is named in a notice; a service not listed is named as configured.
SERVICE_NAMES: Final[dict[Language, dict[str, str]]] = {
    "en": {"cash": "cash", "non_cash": "non-cash", "vip": "VIP", "corporate": "corporate"},
    "zh": {"cash": "现金", "non_cash": "非现金", "vip": "贵宾", "corporate": "对公"},
}
UNKNOWN: Final[dict[Language, str]] = {"en": "unknown", "zh": "未知"}
_UNITS: Final[dict[Language, tuple[str, str, str]]] = {
    "en": (" s", " min", " h "),
    "zh": ("秒", "分钟", "小时"),
}


def template_fields(template: str) -> list[str]:
    """The replacement fields of a template; ``ValueError`` when it is not well formed."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def check_template(kind: NoticeKind, template: str) -> str | None:
    """Why ``template`` cannot be used for ``kind``, or None when it can."""
    try:
        names = template_fields(template)
    except ValueError as exc:
        return f"is not a valid template ({exc}; write {{{{ and }}}} for literal braces)"
    allowed = FIELDS[kind]
    bad = sorted({name for name in names if name not in allowed})
    if bad:
        return f"uses {bad}: the fields of {kind} are {list(allowed)}"
    try:
        template.format(**dict.fromkeys(allowed, "x"))
    except (ValueError, IndexError, KeyError) as exc:
        return f"cannot be filled in ({exc})"
    if not template.strip():
        return "is empty"
    return None


def duration(seconds: float, language: Language) -> str:
    """``45 s``, ``21 min``, ``1 h 5 min`` (or 45秒, 21分钟, 1小时5分钟)."""
    sec, minute, hour = _UNITS[language]
    whole = max(int(seconds), 0)
    if whole < 60:
        return f"{whole}{sec}"
    if whole < 3600:
        return f"{whole // 60}{minute}"
    hours, rest = divmod(whole // 60, 60)
    return f"{hours}{hour}{rest}{minute}" if rest else f"{hours}{hour}".rstrip()


def service_name(service: str, language: Language) -> str:
    return SERVICE_NAMES[language].get(service, service)


def fit(text: str) -> str:
    """``text`` cut to the contract's bound, marked with an ellipsis when cut."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class Texts:
    """The templates in use: the language's, with the configured overrides."""

    def __init__(self, language: Language, overrides: dict[NoticeKind, str]) -> None:
        self.language: Final = language
        self._templates = {**TEMPLATES[language], **overrides}

    def render(self, kind: NoticeKind, **values: str | None) -> str:
        unknown = UNKNOWN[self.language]
        filled = {name: unknown if value is None else value for name, value in values.items()}
        return fit(self._templates[kind].format(**filled))

    def duration(self, seconds: float) -> str:
        return duration(seconds, self.language)

    def service(self, service: str) -> str:
        return service_name(service, self.language)
