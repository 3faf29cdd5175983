"""MNIST_ARTIFACTS_URL: where shared things go, and one line for each bad setting, with nothing written."""

import json

import boto3
import pytest
from s3fs import S3FileSystem

from mnist_pipeline import settings, shared_store
from mnist_pipeline.flows.cli import main


def test_the_shared_root_holds_cache_models_data_and_results(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path / "local"))
    monkeypatch.delenv("MNIST_CACHE_URL", raising=False)
    monkeypatch.delenv("MNIST_ARTIFACTS_URL", raising=False)
    assert settings.models_location() == tmp_path / "local" / "models"  # one machine: as before
    assert settings.cache_url() == str(tmp_path / "local" / "cache") and settings.results_url() is None

    monkeypatch.setenv("MNIST_ARTIFACTS_URL", "s3://bucket/mnist/")
    assert settings.models_location() == "s3://bucket/mnist/models"
    assert settings.data_store_location() == "s3://bucket/mnist/data"
    assert settings.cache_url() == "s3://bucket/mnist/cache" and settings.cache_setting() == "MNIST_ARTIFACTS_URL"
    assert settings.results_url() == "s3://bucket/mnist/results"
    assert settings.fetch_dir() == tmp_path / "local" / "fetched"  # what each machine keeps to itself
    monkeypatch.setenv("MNIST_CACHE_URL", "s3://other/cache")
    assert settings.cache_url() == "s3://other/cache" and settings.cache_setting() == "MNIST_CACHE_URL"


@pytest.fixture
def no_aws_files(monkeypatch, tmp_path):
    """No credentials but those in the environment, and a failed request is not retried for long."""
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


def objects(bucket: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket.removeprefix("s3://"))
    return [item["Key"] for item in listing.get("Contents", [])]


def as_a_new_process() -> None:
    """Forget the stores this process opened (and the credentials their clients found)."""
    S3FileSystem.clear_instance_cache()
    shared_store._checked.cache_clear()


def one_line_error(capsys, url: str) -> str:
    """Runs `mnist-pipeline models` on `url` as a new process would (no store opened before); returns its one
    line of error after the setting and the URL."""
    as_a_new_process()
    assert main(["models"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    prefix = f"mnist-pipeline models: error: MNIST_ARTIFACTS_URL {url}: "
    assert error.startswith(prefix), error
    return error.removeprefix(prefix)


@pytest.mark.parametrize(
    "url, problem",
    [
        ("nosuch://bucket/mnist", "unknown scheme (Protocol not known: nosuch)"),
        ("gcs://bucket/mnist", "its filesystem package is missing (Please install gcsfs"),
    ],
)
def test_a_url_this_process_cannot_open_gets_one_line(monkeypatch, capsys, artifacts_dir, url, problem):
    monkeypatch.setenv("MNIST_ARTIFACTS_URL", url)
    assert one_line_error(capsys, url).startswith(problem)
    assert not artifacts_dir.exists()


def test_a_missing_bucket_no_credentials_and_an_unreachable_endpoint_get_one_line_each(
    s3_bucket, no_aws_files, monkeypatch, capsys, artifacts_dir
):
    monkeypatch.setenv("MNIST_ARTIFACTS_URL", "s3://no-such-bucket/mnist")
    assert one_line_error(capsys, "s3://no-such-bucket/mnist").startswith("the bucket does not exist")

    url = f"{s3_bucket}/mnist"
    monkeypatch.setenv("MNIST_ARTIFACTS_URL", url)
    with monkeypatch.context() as without:
        without.delenv("AWS_ACCESS_KEY_ID")
        without.delenv("AWS_SECRET_ACCESS_KEY")
        assert one_line_error(capsys, url).startswith("no credentials; set AWS_ACCESS_KEY_ID")
    with monkeypatch.context() as elsewhere:
        elsewhere.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
        assert one_line_error(capsys, url).startswith("unreachable (Could not connect to the endpoint URL")
    assert objects(s3_bucket) == [] and not artifacts_dir.exists()
    as_a_new_process()
    assert main(["models", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []


def test_no_write_permission_gets_one_line(s3_bucket, no_aws_files, monkeypatch, capsys, artifacts_dir):
    """moto checks IAM only when asked to: a user who may read the bucket but not write it."""
    from moto import settings as moto_settings

    iam = boto3.client("iam")
    iam.create_user(UserName="reader")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}],
    }
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    url = f"{s3_bucket}/mnist"
    monkeypatch.setenv("MNIST_ARTIFACTS_URL", url)
    with monkeypatch.context() as reader:
        reader.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        reader.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        reader.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        assert one_line_error(capsys, url).startswith("no write permission (Access Denied)")
    assert objects(s3_bucket) == []
