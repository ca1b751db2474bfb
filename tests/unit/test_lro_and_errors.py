import pytest

from shared.arm.errors import ArmError
from shared.arm.lro import Outcome, PollMode, classify, parse_retry_after, polling_target
from shared.arm.retry import RetryPolicy


def test_polling_target_prefers_azure_async_operation():
    headers = {"azure-asyncoperation": "https://a/op", "location": "https://a/res", "retry-after": "15"}
    target = polling_target(headers)
    assert target is not None
    assert (target.url, target.mode, target.retry_after_s) == ("https://a/op", PollMode.ASYNC_OPERATION, 15)
    assert polling_target({"location": "https://a/res"}).mode is PollMode.LOCATION  # type: ignore[union-attr]
    assert polling_target({}) is None


@pytest.mark.parametrize(("raw", "seconds"), [("", 60), ("0", 0), ("7", 7), ("99999", 600), ("soon", 60)])
def test_retry_after(raw, seconds):
    assert parse_retry_after({"retry-after": raw} if raw else {}) == seconds


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("Inprogress", Outcome.RUNNING), ("InProgress", Outcome.RUNNING), ("Running", Outcome.RUNNING),
     ("succeeded", Outcome.SUCCEEDED), ("Failed", Outcome.FAILED), ("Canceled", Outcome.FAILED),
     ("Cancelled", Outcome.FAILED), ("Paused", Outcome.RUNNING)],
)  # fmt: skip
def test_status_words_compare_case_insensitively(status, outcome):
    result = classify(PollMode.ASYNC_OPERATION, 200, {"status": status}, {}, default_retry_after=5)
    assert result.outcome is outcome


def test_failed_status_carries_the_user_facing_error():
    body = {
        "status": "Failed",
        "error": {
            "code": "UserErrorGeneric",
            "message": "outer",
            "additionalInfo": [
                {
                    "type": "UserFacingError",
                    "info": {
                        "code": "UserErrorMissingRequiredPermissions",
                        "message": "Backup vault lacks permissions",
                        "recommendedAction": "Grant the role",
                        "isRetryable": False,
                    },
                }
            ],
        },
    }
    result = classify(PollMode.ASYNC_OPERATION, 200, body, {"x-ms-request-id": "r1"}, default_retry_after=5)
    assert result.outcome is Outcome.FAILED
    assert result.error is not None
    assert result.error.code == "UserErrorMissingRequiredPermissions"
    assert result.error.recommended_action == "Grant the role"
    assert result.error.request_id == "r1"


def test_location_polling_and_odd_bodies():
    assert classify(PollMode.LOCATION, 202, None, {}, default_retry_after=5).outcome is Outcome.RUNNING
    assert classify(PollMode.LOCATION, 204, None, {}, default_retry_after=5).outcome is Outcome.SUCCEEDED
    odd = classify(PollMode.ASYNC_OPERATION, 200, ["x"], {}, default_retry_after=5)
    assert odd.outcome is Outcome.FAILED
    assert odd.error is not None and odd.error.code == "InvalidOperationStatus"


def test_cloud_error_without_details():
    error = ArmError.from_body({"error": {"code": "ResourceGroupNotFound", "message": "nope"}}, status=404)
    assert (error.code, error.message, error.status) == ("ResourceGroupNotFound", "nope", 404)
    assert ArmError.from_body("garbage", status=500).code == "HTTP500"


def test_retry_policy_never_retries_202_or_unsafe_posts():
    policy = RetryPolicy()
    assert not policy.should_retry(202, idempotent=True, sent=True)
    assert policy.should_retry(503, idempotent=True, sent=True)
    assert not policy.should_retry(503, idempotent=False, sent=True)
    assert policy.should_retry(429, idempotent=False, sent=True)
    assert not policy.should_retry(None, idempotent=False, sent=True)
    assert policy.should_retry(None, idempotent=False, sent=False)
