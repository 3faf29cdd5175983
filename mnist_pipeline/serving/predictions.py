"""Predictions of uploaded images: decoded fairly, then one model call shared with concurrent requests."""

from mnist_pipeline.serving.batcher import Batcher
from mnist_pipeline.serving.decoding import Decoder
from mnist_pipeline.serving.model_slot import LoadedModel
from mnist_pipeline.serving.schemas import Prediction


class Predictor:
    def __init__(self, decoder: Decoder, batcher: Batcher):
        self.decoder, self.batcher = decoder, batcher

    async def predict(self, model: LoadedModel, images: list[tuple[str, bytes]]) -> list[Prediction]:
        """`model`'s answer for each image, in their order; the model calls shared with concurrent requests."""
        probabilities = await self.batcher.predict(model, await self.decoder.digits(images))
        return [
            Prediction(digit=int(row.argmax()), probabilities=[round(float(p), 6) for p in row], version=model.version)
            for row in probabilities
        ]
