"""The model: a SMILES VAE with a GRU encoder, an autoregressive GRU decoder and property heads.

- encoder: token embedding -> bidirectional GRU -> (mu, log sigma^2) of a Gaussian latent z
- decoder: GRU whose initial state is a linear map of z and which sees z at every step
  (autoregressive: token t is predicted from tokens < t and z; sampled token by token)
- proxy head: MLP(z) -> standardised proxy targets (xTB/RDKit descriptors, structural descriptors)
- KD head: MLP([z, structural descriptors]) -> standardised Kramers-doublet energies

Training logic (losses, masking, annealing) is in :mod:`smmflow.ml.vae.trainer`; sampling and
latent-space search in :mod:`smmflow.ml.generate`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class VAEConfig:
    """Hyper-parameters of :class:`SmilesVAE` (saved in the checkpoint)."""

    vocab_size: int
    max_len: int = 64
    embed_dim: int = 48
    hidden_dim: int = 192
    latent_dim: int = 32
    num_layers: int = 1
    dropout: float = 0.1
    n_proxy: int = 0
    n_struct: int = 0
    n_kd: int = 1
    head_hidden: int = 64

    def to_dict(self) -> dict:
        return asdict(self)


def pick_device(prefer: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. ``cpu``/``cuda`` force a choice."""
    if prefer == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if prefer == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no GPU")
    return torch.device(prefer)


def _mlp(n_in: int, n_hidden: int, n_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, n_hidden), nn.SiLU(), nn.Dropout(dropout),
        nn.Linear(n_hidden, n_hidden), nn.SiLU(), nn.Linear(n_hidden, n_out),
    )


class SmilesVAE(nn.Module):
    """GRU SMILES VAE with masked multi-task heads (see module docstring)."""

    def __init__(self, cfg: VAEConfig, pad_id: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.pad_id = pad_id
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=pad_id)
        gru_drop = cfg.dropout if cfg.num_layers > 1 else 0.0
        self.encoder = nn.GRU(cfg.embed_dim, cfg.hidden_dim, num_layers=cfg.num_layers,
                              batch_first=True, bidirectional=True, dropout=gru_drop)
        self.to_mu = nn.Linear(2 * cfg.hidden_dim, cfg.latent_dim)
        self.to_logvar = nn.Linear(2 * cfg.hidden_dim, cfg.latent_dim)
        self.z_to_h = nn.Linear(cfg.latent_dim, cfg.num_layers * cfg.hidden_dim)
        self.decoder = nn.GRU(cfg.embed_dim + cfg.latent_dim, cfg.hidden_dim,
                              num_layers=cfg.num_layers, batch_first=True, dropout=gru_drop)
        self.out = nn.Linear(cfg.hidden_dim, cfg.vocab_size)
        self.word_dropout = cfg.dropout
        self.proxy_head = _mlp(cfg.latent_dim, cfg.head_hidden, cfg.n_proxy, cfg.dropout) if cfg.n_proxy else None
        self.kd_head = _mlp(cfg.latent_dim + cfg.n_struct, cfg.head_hidden, cfg.n_kd, cfg.dropout)

    # --- encoder --------------------------------------------------------------------------
    def encode(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | SMILES) for a batch of padded token ids (B, T)."""
        lengths = (ids != self.pad_id).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, h = self.encoder(packed)  # (2*layers, B, H)
        h = torch.cat([h[-2], h[-1]], dim=-1)
        return self.to_mu(h), self.to_logvar(h).clamp(-10.0, 5.0)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    # --- decoder --------------------------------------------------------------------------
    def _h0(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.z_to_h(z))
        return h.view(z.shape[0], self.cfg.num_layers, self.cfg.hidden_dim).transpose(0, 1).contiguous()

    def decode_logits(self, z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T-1, V) predicting ids[:, 1:] from ids[:, :-1] and z."""
        inp = ids[:, :-1]
        if self.training and self.word_dropout > 0:
            drop = torch.rand(inp.shape, device=inp.device) < self.word_dropout
            drop[:, 0] = False  # keep <bos>
            inp = inp.masked_fill(drop & (inp != self.pad_id), self.pad_id)
        emb = self.embed(inp)
        zz = z.unsqueeze(1).expand(-1, emb.shape[1], -1)
        out, _ = self.decoder(torch.cat([emb, zz], dim=-1), self._h0(z))
        return self.out(out)

    @torch.no_grad()
    def sample_ids(self, z: torch.Tensor, bos_id: int, eos_id: int, max_len: int | None = None,
                   temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Autoregressive decoding of z (B, latent) to ids (B, <= max_len).

        ``temperature`` 0 means greedy (argmax); otherwise multinomial sampling with ``generator``.
        """
        max_len = max_len or self.cfg.max_len
        b = z.shape[0]
        h = self._h0(z)
        tok = torch.full((b, 1), bos_id, dtype=torch.long, device=z.device)
        out = [tok]
        done = torch.zeros(b, dtype=torch.bool, device=z.device)
        for _ in range(max_len - 1):
            x = torch.cat([self.embed(tok), z.unsqueeze(1)], dim=-1)
            o, h = self.decoder(x, h)
            logits = self.out(o[:, -1])
            if temperature <= 0:
                tok = logits.argmax(-1, keepdim=True)
            else:
                p = torch.softmax(logits / temperature, dim=-1)
                tok = torch.multinomial(p, 1, generator=generator)
            tok = tok.masked_fill(done.unsqueeze(1), self.pad_id)
            out.append(tok)
            done |= tok.squeeze(1) == eos_id
            if bool(done.all()):
                break
        return torch.cat(out, dim=1)

    # --- heads ----------------------------------------------------------------------------
    def predict_proxies(self, z: torch.Tensor) -> torch.Tensor:
        if self.proxy_head is None:
            return z.new_zeros(z.shape[0], 0)
        return self.proxy_head(z)

    def predict_kd(self, z: torch.Tensor, struct: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.n_struct:
            if struct is None:
                raise ValueError("this KD head needs structural descriptors")
            z = torch.cat([z, struct], dim=-1)
        return self.kd_head(z)

    def forward(self, ids: torch.Tensor, struct: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(ids)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return {
            "mu": mu, "logvar": logvar, "z": z,
            "logits": self.decode_logits(z, ids),
            "proxy": self.predict_proxies(z),
            "kd": self.predict_kd(z, struct),
        }
