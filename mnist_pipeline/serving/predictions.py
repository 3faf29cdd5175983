"""Predictions of uploaded images: decoded fairly, then one model call shared with concurrent requests; each
answer counted for /metrics and a sample of them queued for the prediction log."""

from mnist_pipeline.prediction_log import new_prediction_id
from mnist_pipeline.serving.batcher import Batcher
from mnist_pipeline.serving.decoding import Decoder
from mnist_pipeline.serving.metrics import ServiceMetrics
from mnist_pipeline.serving.model_slot import LoadedModel
from mnist_pipeline.serving.prediction_logger import PredictionLog
from mnist_pipeline.serving.schemas import Prediction


class Predictor:
    def __init__(
        self,
        decoder: Decoder,
        batcher: Batcher,
        metrics: ServiceMetrics | None = None,
        log: PredictionLog | None = None,
    ):
        self.decoder, self.batcher, self.metrics, self.log = decoder, batcher, metrics, log

    async def predict(self, model: LoadedModel, images: list[tuple[str, bytes]]) -> list[Prediction]:
        """`model`'s answer for each image, in their order; the model calls shared with concurrent requests."""
        digits = await self.decoder.digits(images)
        probabilities = await self.batcher.predict(model, digits)
        answers = [
            Prediction(
                digit=int(row.argmax()),
                probabilities=[round(float(p), 6) for p in row],
                version=model.version,
                prediction_id=new_prediction_id(),
            )
            for row in probabilities
        ]
        if self.metrics is not None:
            self.metrics.observe_predictions(
                model.version, [answer.digit for answer in answers], [float(row.max()) for row in probabilities]
            )
        if self.log is not None:
            self.log.record(model.version, [answer.prediction_id for answer in answers], digits, probabilities)
        return answers
