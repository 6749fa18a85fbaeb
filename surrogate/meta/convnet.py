"""The few-shot classifier of Finn et al. 2017 and Nichol et al. 2018: 4 x [conv 3x3 with 64 filters, batch
norm, ReLU, 2x2 max-pool] and a linear head over the flattened features (28x28 Omniglot -> 2x2x64,
84x84 Mini-ImageNet -> 6x6x64 with 'SAME' pooling).

Batch norm always normalises with the statistics of the batch it is given, as both papers' code does
(``tf.layers.batch_normalization(training=True)``): there are no running averages, so how a test batch
is formed matters (Nichol et al., Section 6.2, "transduction"):

* transductive: the whole query set of a task is one batch (its statistics are shared by the query
  samples; Finn et al.'s MAML and FOMAML numbers are all so);
* non-transductive: each query sample is classified in a batch made of the task's training (support) set
  and that one sample, taking the last output (``Reptile._test_predictions`` in openai/supervised-reptile),
  so no information passes between query samples.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from surrogate.core.networks import Im2colConv


class BatchStatNorm(nn.Module):
    """Batch norm over (batch, height, width) with learned scale and shift, always with the batch's own
    statistics (epsilon 1e-3, TensorFlow's default, as in both papers' code)."""
    eps: float = 1e-3

    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        mean = jnp.mean(x, axis=(0, 1, 2))
        var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
        return (x - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias


class ConvNet(nn.Module):
    """``x [B, H, W, C] -> logits [B, n_way]``."""
    n_way: int
    filters: int = 64
    blocks: int = 4

    @nn.compact
    def __call__(self, x):
        for i in range(self.blocks):
            x = Im2colConv(self.filters, padding="SAME", name=f"Conv_{i}")(x)  # nn.Conv's params, as a matmul
            x = nn.relu(BatchStatNorm()(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
        return nn.Dense(self.n_way)(x.reshape(x.shape[0], -1))


def make(n_way: int, filters: int = 64):
    """``(init(key, image_shape) -> params, loss_fn(params, x, y), apply(params, x) -> logits)``."""
    net = ConvNet(n_way, filters)

    def init(key, image_shape):
        return net.init(key, jnp.zeros((2, *image_shape)))

    def loss_fn(params, x, y):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(net.apply(params, x), y))

    return init, loss_fn, net.apply


def predict_transductive(apply, params, x_support, x_query):
    """Labels of ``x_query [Q, ...]`` classified as one batch (batch-norm statistics of the query set)."""
    del x_support
    return jnp.argmax(apply(params, x_query), axis=-1)


def predict_non_transductive(apply, params, x_support, x_query):
    """Labels of ``x_query [Q, ...]``, each classified in a batch of the support set plus itself."""
    def one(xq):
        return jnp.argmax(apply(params, jnp.concatenate([x_support, xq[None]], axis=0))[-1])

    return jax.vmap(one)(x_query)
