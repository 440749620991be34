"""The CORS layer's options as given, or read from django-cors-headers' ``CORS_*``
settings (with the name each one is mentioned by in an error message)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, Final, NoReturn

from middleware_stack import StackConfigurationError


class _FromSettings(enum.Enum):
    """Default of every option: "not given". With no policy option given at all, the
    layer reads the ``CORS_*`` settings; with any given, unset options take strict
    defaults. A sentinel (not ``**kwargs``) keeps the builder's signature check able to
    list the accepted option names."""

    FROM_SETTINGS = "FROM_SETTINGS"

    def __repr__(self) -> str:
        return "FROM_SETTINGS"


FROM_SETTINGS: Final = _FromSettings.FROM_SETTINGS

#: Settings django-cors-headers removed and reports as errors (corsheaders.E012/E013).
REMOVED_SETTINGS: Final = {
    "CORS_MODEL": "origins come from CORS_ALLOWED_ORIGINS / CORS_ALLOWED_ORIGIN_REGEXES; "
    "for origins kept in the database, build the layer's allow_origins from them.",
    "CORS_REPLACE_HTTPS_REFERER": "Django's CSRF check reads CSRF_TRUSTED_ORIGINS; list "
    "the cross-origin sites there instead.",
}

#: django-cors-headers' defaults (corsheaders.defaults), used when reading settings.
CORSHEADERS_DEFAULT_METHODS: Final = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")
CORSHEADERS_DEFAULT_HEADERS: Final = (
    "accept",
    "authorization",
    "content-type",
    "user-agent",
    "x-csrftoken",
    "x-requested-with",
)


class _Config:
    """Options as given, or as read from the ``CORS_*`` settings, with the name under
    which each one should be mentioned in an error message."""

    def __init__(self, given: dict[str, Any], debug: Any) -> None:
        from django.conf import settings

        configured = settings.configured
        self.django_middleware: list[str] = (
            list(getattr(settings, "MIDDLEWARE", None) or []) if configured else []
        )
        self.names: dict[str, str] = {k: k for k in given}
        self.from_settings = all(v is FROM_SETTINGS for v in given.values())
        if debug is FROM_SETTINGS:
            debug = bool(getattr(settings, "DEBUG", False)) if configured else False
        self.debug = debug
        if not self.from_settings:
            self.values: dict[str, Any] = {
                "allow_origins": (),
                "allow_origin_regex": (),
                "allow_methods": (),
                "allow_headers": (),
                "expose_headers": (),
                "allow_credentials": False,
                "max_age": 0,
                "allow_private_network": False,
                "paths": None,
            }
            self.values.update({k: v for k, v in given.items() if v is not FROM_SETTINGS})
            return

        for removed, why in REMOVED_SETTINGS.items():
            if configured and hasattr(settings, removed):
                self.fail(
                    f"The {removed} setting has been removed (django-cors-headers reports it "
                    f"too, and ignores it): {why}",
                    f"Delete {removed} from your settings.",
                    "E108",
                )

        def get(name: str, default: Any, *aliases: str) -> tuple[str, Any]:
            for setting in (name, *aliases):
                if configured and hasattr(settings, setting):
                    return setting, getattr(settings, setting)
            return name, default

        table = {
            "allow_origins": get("CORS_ALLOWED_ORIGINS", (), "CORS_ORIGIN_WHITELIST"),
            "allow_origin_regex": get(
                "CORS_ALLOWED_ORIGIN_REGEXES", (), "CORS_ORIGIN_REGEX_WHITELIST"
            ),
            "allow_methods": get("CORS_ALLOW_METHODS", CORSHEADERS_DEFAULT_METHODS),
            "allow_headers": get("CORS_ALLOW_HEADERS", CORSHEADERS_DEFAULT_HEADERS),
            "expose_headers": get("CORS_EXPOSE_HEADERS", ()),
            "allow_credentials": get("CORS_ALLOW_CREDENTIALS", False),
            "max_age": get("CORS_PREFLIGHT_MAX_AGE", 86400),
            "allow_private_network": get("CORS_ALLOW_PRIVATE_NETWORK", False),
            "paths": get("CORS_URLS_REGEX", None),
        }
        self.values = {k: v for k, (_, v) in table.items()}
        self.names = {k: s for k, (s, _) in table.items()}
        all_setting, allow_all = get("CORS_ALLOW_ALL_ORIGINS", False, "CORS_ORIGIN_ALLOW_ALL")
        if allow_all is True:
            self.values["allow_origins"] = ["*", *self._seq("allow_origins", str)]
            self.names["allow_origins"] = f"{all_setting} = True / {self.names['allow_origins']}"
        elif not isinstance(allow_all, bool):
            self.fail(
                f"{all_setting} = {allow_all!r} is not a bool.",
                "Set it to True or False.",
                "E106",
            )
        paths = self.values["paths"]
        if paths in (r"^.*$", ".*", r"^.*", ""):
            self.values["paths"] = None

    def fail(self, msg: str, hint: str, code: str) -> NoReturn:
        raise StackConfigurationError(msg, hint=hint, id=f"middleware_stack.{code}")

    def label(self, key: str) -> str:
        return self.names[key]

    def _seq(self, key: str, *types: type) -> list[Any]:
        value = self.values[key]
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            example = f"[{value!r}]" if isinstance(value, str) else "['...']"
            self.fail(
                f"{self.label(key)} = {value!r} must be a list, not {type(value).__name__}.",
                f"Wrap it in a list: {example}.",
                "E106",
            )
        items = list(value)
        for item in items:
            if not isinstance(item, types):
                wanted = " or ".join(t.__name__ for t in types)
                self.fail(
                    f"{self.label(key)} contains {item!r}, which is not a {wanted}.",
                    f"List only {wanted} values.",
                    "E106",
                )
        return items

    def seq(self, key: str) -> list[str]:
        return self._seq(key, str)

    def flag(self, key: str) -> bool:
        value = self.values[key]
        if not isinstance(value, bool):
            self.fail(f"{self.label(key)} = {value!r} is not a bool.", "Use True or False.", "E106")
        return bool(value)
