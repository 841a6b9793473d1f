from mnist_core.config import TrainConfig
from mnist_core.train import fit


def test_fit_learns_synthetic_digits(tiny_mnist):
    result = fit(TrainConfig(model="seed-net", epochs=3, batch_size=32, lr=0.003, device="cpu"), tiny_mnist)
    assert result.test_accuracy > 50
