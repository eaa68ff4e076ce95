"""BiLM for pretraining: the char CNN runs once per distinct token string of a batch.

News text repeats "the", ",", "." ... constantly: a 3,000-token batch of the LM corpus has about 2.5x
fewer distinct tokens than positions, and the char CNN is about a third of the small config's forward
FLOPs. Same parameters and state_dict as BiLM (it is one), so export and load_bilm are unaffected;
outputs are identical, gradients equal up to float summation order. Without gradients (evaluation) the
BiLM's own path runs."""
import torch

from ..bilm.bilm import BiLM


class TrainingBiLM(BiLM):
    def encode_tokens(self, char_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return super().encode_tokens(char_ids, lengths)
        B, T, _ = char_ids.shape
        valid = torch.arange(T, device=char_ids.device).unsqueeze(0) < lengths.unsqueeze(1)
        distinct, inverse = torch.unique(char_ids[valid], dim=0, return_inverse=True)
        vectors = self.char_cnn(distinct)[inverse]
        out = vectors.new_zeros(B, T, vectors.shape[-1])
        out[valid] = vectors
        return out


__all__ = ["TrainingBiLM"]
