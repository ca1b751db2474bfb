"""The dev host's sans-IO parts: settings, host.json, webhook classification, schedules, app indexing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import pytest

from devhost.eventgrid import Reply, classify
from devhost.httptrigger import aiohttp_path, to_response
from devhost.loader import index_functions
from devhost.queues import connection_string, decode_body
from devhost.settings import (
    ConfigError,
    apply_settings,
    host_config_from_dict,
    load_local_settings,
    parse_timespan,
    resolve,
)
from devhost.timers import is_past_due, next_occurrence, timer_input, validate_schedule


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:30", 30.0), ("00:01:00", 60.0), ("1.02:00:00", 93600.0), ("00:00:00.250", 0.25), (2000, 2.0)],
)
def test_timespans(text: object, seconds: float) -> None:
    assert parse_timespan(text, where="x") == seconds


def test_bad_timespan_names_the_option() -> None:
    with pytest.raises(ConfigError, match="visibilityTimeout"):
        host_config_from_dict({"extensions": {"queues": {"visibilityTimeout": "soon"}}})


def test_host_json_defaults_are_the_hosts() -> None:
    config = host_config_from_dict({"version": "2.0"})
    queues = config.queues
    assert (queues.batch_size, queues.new_batch_threshold, queues.max_dequeue_count) == (16, 8, 5)
    assert (queues.visibility_timeout, queues.max_polling_interval, queues.message_encoding) == (
        0.0,
        60.0,
        "base64",
    )
    assert host_config_from_dict({"extensions": {"queues": {"batchSize": 4}}}).queues.new_batch_threshold == 2
    assert host_config_from_dict({"functionTimeout": "-1"}).function_timeout is None


def test_environment_wins_over_local_settings(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "file", "B": "file"}}))
    environ = {"A": "env"}
    assert apply_settings(load_local_settings(path), environ) == ["B"]
    assert environ == {"A": "env", "B": "file"}
    assert load_local_settings(tmp_path / "missing.json") == {}


def test_percent_settings_resolve_or_fail_with_the_name() -> None:
    assert resolve("%Q%-x", {"Q": "jobs"}, where="f.queueName") == "jobs-x"
    with pytest.raises(ConfigError, match=r"f\.queueName: setting 'MISSING'"):
        resolve("%MISSING%", {}, where="f.queueName")


def test_connection_lookup_follows_the_host() -> None:
    assert connection_string("Storage", {"AzureWebJobsStorage": "cs"}, where="f") == "cs"
    with pytest.raises(ConfigError, match="identity-based"):
        connection_string("Storage", {"Storage__queueServiceUri": "https://x"}, where="f")


def test_base64_decoding() -> None:
    assert decode_body("aGVsbG8=", "base64") == b"hello"
    assert decode_body("hello world!", "base64") is None
    assert decode_body("hello", "none") == b"hello"


def test_webhook_classification() -> None:
    bad = classify("POST", {}, b"[")
    assert isinstance(bad, Reply)
    assert bad.status == 400
    handshake = classify("POST", {"aeg-event-type": "SubscriptionValidation"}, b'[{"data": {"validationCode": "c"}}]')
    assert handshake == Reply(200, {"validationResponse": "c"})
    events = classify("POST", {"aeg-event-type": "Notification"}, b'[{"id": "1"}, {"id": "2"}]')
    assert events == [{"id": "1"}, {"id": "2"}]
    single = classify("POST", {"Content-Type": "application/cloudevents+json"}, b'{"specversion": "1.0"}')
    assert single == [{"specversion": "1.0"}]
    options = classify("OPTIONS", {"WebHook-Request-Origin": "eventgrid.azure.net"}, b"")
    assert isinstance(options, Reply)
    assert options.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert isinstance(classify("OPTIONS", {}, b""), Reply)
    assert classify("POST", {"aeg-event-type": "Unsubscribe"}, b"[]") == Reply(202, None)


def test_schedules_are_six_field_ncrontab() -> None:
    assert validate_schedule("0 */5 * * * *", where="t") == "0 */5 * * * *"
    with pytest.raises(ConfigError, match="6-field"):
        validate_schedule("*/5 * * * *", where="t")
    start = datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert next_occurrence("*/10 * * * * *", start) == datetime(2024, 1, 1, 0, 0, 10, tzinfo=UTC)


def test_past_due_needs_the_monitor_and_a_period_of_lateness() -> None:
    due = datetime(2024, 1, 1, tzinfo=UTC)
    assert is_past_due("0 */5 * * * *", due, due + timedelta(minutes=6), use_monitor=True)
    assert not is_past_due("0 */5 * * * *", due, due + timedelta(minutes=4), use_monitor=True)
    assert not is_past_due("0 */5 * * * *", due, due + timedelta(minutes=6), use_monitor=False)
    assert not is_past_due("*/1 * * * * *", due, due + timedelta(seconds=5), use_monitor=True)  # < 1 min
    assert timer_input(True, None, due).past_due is True


def test_unsupported_bindings_are_named_at_startup() -> None:
    app = func.FunctionApp()

    @app.blob_trigger(arg_name="blob", path="c/{name}", connection="S")
    def on_blob(blob: func.InputStream) -> None: ...

    with pytest.raises(ConfigError, match=r"on_blob: blobTrigger is not supported \(supported: eventGridTrigger"):
        index_functions(app, {})


def test_queue_names_are_resolved_and_checked() -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%Q%", connection="S")
    def on_msg(msg: func.QueueMessage) -> None: ...

    (spec,) = index_functions(app, {"Q": "jobs"})
    assert spec.properties == {"queue_name": "jobs", "connection": "S"}
    app2 = func.FunctionApp()
    app2.queue_trigger(arg_name="msg", queue_name="Bad_Name", connection="S")(
        on_msg.__wrapped__ if hasattr(on_msg, "__wrapped__") else lambda msg: None
    )
    with pytest.raises(ConfigError, match="not a valid Azure Storage queue name"):
        index_functions(app2, {})


def test_http_route_templates_translate_to_aiohttp() -> None:
    assert aiohttp_path("items/{id:int}") == "/api/items/{id}"
    assert aiohttp_path("/files/{*rest}") == "/api/files/{rest:.*}"
    assert aiohttp_path("health") == "/api/health"


def test_http_return_values_become_responses() -> None:
    response = to_response(func.HttpResponse("x", status_code=202, headers={"X-A": "1"}, mimetype="text/csv"))
    assert (response.status, response.body, response.headers["X-A"], response.content_type) == (
        202,
        b"x",
        "1",
        "text/csv",
    )
    assert to_response(None).status == 204
    assert to_response("hi").body == b"hi"
