"""Config checks: every problem is caught at start-up and named."""

from __future__ import annotations

import pytest

from target_gorgias.errors import ConfigError
from target_gorgias.settings import load_settings, parse_headers

BASE = {"api_url": "http://127.0.0.1:9", "email": "a@example.com", "api_key": "k3y-secret"}


def settings(**extra):
    return load_settings({**BASE, **extra})


def errors(**extra) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, **extra})
    return "\n".join(info.value.errors)


def test_subdomain_builds_https_base_url():
    s = load_settings({"subdomain": "acme", "email": "a@b.c", "api_key": "xyzw"})
    assert s.base_url == "https://acme.gorgias.com"
    assert s.rate_limit == 40


def test_oauth_token_defaults_to_80_per_window():
    s = load_settings({"subdomain": "acme", "access_token": "tok-123"})
    assert s.auth_kind == "bearer" and s.rate_limit == 80


@pytest.mark.parametrize(("extra", "expected"), [
    ({"api_url": "http://example.com"}, "must use https://"),
    ({"api_url": "ftp://127.0.0.1"}, "not an http(s) URL"),
    ({"api_url": "https://u:p@acme.gorgias.com"}, "credentials"),
    ({"api_url": None, "subdomain": "bad/sub"}, "not a valid subdomain"),
    ({"api_url": None}, "one of them is required"),
    ({"access_token": "t0ken"}, "choose exactly one auth method"),
    ({"api_key": None}, "api_key: required with email"),
    ({"on_error": "ignore"}, "on_error: must be one of fail, continue"),
    ({"max_concurrency": 0}, "max_concurrency: must be an integer >= 1"),
    ({"timeout": -1}, "timeout: must be a number > 0"),
    ({"streams": {"x": {"endpoint": "nope"}}}, "streams.x.endpoint: unknown template 'nope'"),
    ({"streams": {"x": {"endpoint": "create_tag", "method": "PUT"}}},
     "streams.x.method: create_tag allows POST"),
    ({"streams": {"x": {"endpoint": "update_tag", "method": "PATCH"}}},
     "streams.x.method: update_tag does not offer PATCH: Gorgias documents only PUT"),
    ({"streams": {"x": {"endpoint": "create_tag", "message_intent": "import"}}},
     "streams.x.message_intent: only for templates that create messages"),
    ({"streams": {"x": {"endpoint": "create_ticket", "message_intent": "email"}}},
     "streams.x.message_intent: must be one of import, send"),
    ({"preflight": "yes"}, "preflight: must be true or false"),
    ({"streams": {"x": {"method": "GET", "path": "/api/x"}}}, "streams.x.method: must be one of"),
    ({"streams": {"x": {"method": "POST"}}}, "needs 'endpoint'"),
    ({"streams": {"x": {"endpoint": "create_tag", "content_format": "xml"}}},
     "only accepts 'json'"),
    ({"streams": {"x": {"method": "POST", "url": "https://evil.example.com/api/x"}}},
     "not under the configured base URL"),
    ({"streams": {"x": {"endpoint": "create_tag", "pth": "/x"}}}, "streams.x.pth: unknown setting"),
    ({"streams": {"x": {"endpoint": "create_tag", "batch": {"enabled": True, "size": 0}}}},
     "streams.x.batch.size: must be an integer >= 1"),
    ({"streams": {"x": {"endpoint": "create_tag",
                        "batch": {"enabled": True, "grouping": "field"}}}},
     "streams.x.batch.group_by: required"),
    ({"streams": {"x": {"endpoint": "update_tag", "path_params": {"tag": "tag_id"}}}},
     "has no {tag}"),
    ({"request_headers": "X-A:1,Authorization:Basic abc"}, "'Authorization' is set by the target"),
])
def test_config_errors_name_the_setting(extra, expected):
    assert expected in errors(**extra)


def test_all_errors_reported_at_once():
    text = errors(on_error="x", max_retries=-1, streams={"a": {"endpoint": "zzz"}})
    assert "on_error" in text and "max_retries" in text and "streams.a.endpoint" in text


def test_template_method_override_and_defaults():
    s = settings(streams={"t": {"endpoint": "update_tag", "method": "put"},
                          "m": {"method": "patch", "path": "/api/x/{id}"}})
    st = s.stream("t")
    assert st is not None and st.method == "PUT" and st.path == "/api/tags/{id}"
    assert s.warnings == ("streams.m: manual method PATCH: Gorgias documents only PUT (a "
                          "partial update); PATCH may be answered 405",)
    assert st.path_params == {"id": "id"}
    d = settings(streams={"d": {"endpoint": "delete_tags"}}).stream("d")
    assert d is not None and d.batch.enabled and d.batch.pluck == "id" and d.batch.wrap_key == "ids"


def test_manual_url_under_base_becomes_path():
    s = settings(streams={"m": {"method": "PUT", "url": "http://127.0.0.1:9/api/tags/{id}"}})
    st = s.stream("m")
    assert st is not None and st.path == "/api/tags/{id}" and st.endpoint_id == "manual"


def test_stream_matching_exact_then_longest_glob():
    s = settings(streams={
        "*": {"endpoint": "create_tag"},
        "orders_*": {"endpoint": "create_ticket"},
        "orders_eu_*": {"endpoint": "create_customer"},
        "orders_eu_special": {"endpoint": "create_user"},
    })
    assert s.stream("orders_eu_special").endpoint_id == "create_user"
    assert s.stream("orders_eu_1").endpoint_id == "create_customer"
    assert s.stream("orders_us").endpoint_id == "create_ticket"
    assert s.stream("anything").endpoint_id == "create_tag"
    assert settings(streams={"a": {"endpoint": "create_tag"}}).stream("b") is None


@pytest.mark.parametrize(("raw", "expected"), [
    ("X-One:1,X-Two:a:b:c", {"X-One": "1", "X-Two": "a:b:c"}),
    (" X-Sp : v ,", {"X-Sp": "v"}),
    ('{"X-Json": "yes"}', {"X-Json": "yes"}),
    ({"X-Obj": 5}, {"X-Obj": "5"}),
    ("", {}),
])
def test_header_parsing(raw, expected):
    assert parse_headers(raw, "request_headers") == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("NoColon", "has no ':'"),
    (":v", "empty name"),
    ({"X-A": "a\r\nInjected: 1"}, "line break"),
    ({"Host": "evil"}, "'Host' is set by the target"),
    ({"content-length": "1"}, "'content-length' is set by the target"),
    ({"Bad Name": "1"}, "not a valid HTTP header name"),
])
def test_header_errors(raw, expected):
    with pytest.raises(ConfigError) as info:
        parse_headers(raw, "request_headers")
    assert expected in str(info.value)
    assert "request_headers" in str(info.value)


def test_fractional_numbers_from_a_config_file(tmp_path):
    """The SDK reads config files with Decimal floats: 2.5 s must be accepted."""
    import json
    import subprocess

    from tests.support import CLI
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({**BASE, "timeout": 2.5, "rate_limit_window": 1.5, "streams": {}}))
    proc = subprocess.run([CLI, "--config", str(cfg)], input="", capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
