"""Adapter for Hugging Face reward and cost models (sequence classifiers with one output).

:class:`HFRewardModel` gives any ``AutoModelForSequenceClassification`` checkpoint the same
``score(prompts, responses) -> Tensor[B]`` as :class:`safelens.reward.RewardModel`. Cost models
(higher = more harmful), such as PKU-Alignment's ``beaver-7b-v1.0-cost`` that ShaPO-R uses, are
turned into rewards with ``negate=True`` (the seed: "we use it as a reward model by negating its
outputs").

Input formats (``template``):
    - ``"beaver"`` — ``BEGINNING OF CONVERSATION: USER: {prompt} ASSISTANT:{response}`` plus the
      EOS token, the format of the safe-rlhf score models; chosen automatically when the config's
      architecture is a safe-rlhf ``*ForScore`` (whose ``score_head`` weights are mapped onto
      transformers' ``score`` layer at load time, so no safe-rlhf install is needed).
    - ``"chat"`` — the tokenizer's chat template on ``[user: prompt, assistant: response]``.
    - ``"pair"`` — the tokenizer's text-pair encoding ``(prompt, response)`` (cross-encoders such
      as DeBERTa reward models).
    - any string with ``{prompt}`` and ``{response}`` fields.
    - ``None`` (auto) — beaver for ``*ForScore`` models, else chat when the tokenizer has a chat
      template, else pair.

Local directories load with no network access.

Examples:
    >>> cost = HFRewardModel("PKU-Alignment/beaver-7b-v1.0-cost", negate=True)  # doctest: +SKIP
    >>> cost.score(["how do I make a bomb?"], ["I can't help with that."])      # doctest: +SKIP
    tensor([11.2])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from safelens.models.device import resolve_device
from safelens.models.hf import (
    architectures,
    encode_rendered,
    load_config,
    load_pretrained,
    load_tokenizer,
)

BEAVER_TEMPLATE = "BEGINNING OF CONVERSATION: USER: {prompt} ASSISTANT:{response}"
"""Conversation format of the safe-rlhf (beaver) reward and cost models."""

# safe-rlhf score models store the value head as ``score_head``; transformers calls it ``score``.
_BEAVER_KEY_MAPPING = {r"^score_head\.": "score."}


class HFRewardModel:
    """Score (prompt, response) pairs with a Hugging Face sequence-classification reward model.

    Args:
        model_id_or_path: Hub id or local directory.
        negate: multiply scores by −1 (cost model → reward).
        template: input format, see the module docstring.
        label_index: which logit is the reward when the model has several outputs (required
            then; a single-output model uses its only logit).
        device: torch device; ``None`` = CUDA when available, else CPU.
        dtype: model dtype (``torch.bfloat16`` for 7B models on GPU); ``None`` = checkpoint's.
        batch_size: pairs per forward pass.
        max_length: truncation length in tokens.
        trust_remote_code: passed to ``from_pretrained``.

    Raises:
        ValueError: for an unknown template or a multi-output model without ``label_index``.
    """

    def __init__(
        self,
        model_id_or_path: str | os.PathLike,
        negate: bool = False,
        template: str | None = None,
        label_index: int | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        batch_size: int = 8,
        max_length: int = 1024,
        trust_remote_code: bool = False,
    ) -> None:
        self.model_id = str(model_id_or_path)
        self.name = self.model_id
        self.negate = negate
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = resolve_device(device)

        config = load_config(self.model_id, trust_remote_code)
        self.is_safe_rlhf = any(a.endswith("ForScore") for a in architectures(config))
        load_kw: dict[str, Any] = {}
        if self.is_safe_rlhf:
            load_kw["key_mapping"] = _BEAVER_KEY_MAPPING
            load_kw["num_labels"] = int(getattr(config, "score_dim", 1) or 1)

        self.tokenizer = load_tokenizer(
            self.model_id, trust_remote_code, padding_side="right", pad_with_eos=True
        )
        self.model = load_pretrained(
            self.model_id, "sequence-classification", self.device, dtype, trust_remote_code,
            **load_kw,
        )
        # Sequence classifiers read the last non-pad token: they must know the pad id.
        if getattr(self.model.config, "pad_token_id", None) is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id

        n_out = int(self.model.config.num_labels)
        if n_out > 1 and label_index is None:
            raise ValueError(
                f"HFRewardModel: {self.model_id} has {n_out} outputs "
                f"({self.model.config.id2label}); pass label_index= to pick the reward"
            )
        if label_index is not None and not 0 <= label_index < n_out:
            raise ValueError(
                f"HFRewardModel: label_index {label_index} out of range for {n_out} outputs"
            )
        self.label_index = 0 if label_index is None else label_index

        if template is None:
            if self.is_safe_rlhf:
                template = "beaver"
            elif getattr(self.tokenizer, "chat_template", None):
                template = "chat"
            else:
                template = "pair"
        if template not in ("beaver", "chat", "pair") and not (
            "{prompt}" in template and "{response}" in template
        ):
            raise ValueError(
                f"HFRewardModel: template must be 'beaver', 'chat', 'pair' or a string with "
                f"{{prompt}} and {{response}}; got {template!r}"
            )
        self.template = template

    def format(self, prompt: str, response: str) -> str:
        """The model's input text for one pair (not used by the ``"pair"`` template)."""
        if self.template == "beaver":
            return BEAVER_TEMPLATE.format(prompt=prompt, response=response) + (
                self.tokenizer.eos_token or ""
            )
        if self.template == "chat":
            msgs = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": response},
            ]
            return self.tokenizer.apply_chat_template(msgs, tokenize=False)
        if self.template == "pair":
            raise ValueError("HFRewardModel.format: the 'pair' template encodes a text pair")
        return self.template.format(prompt=prompt, response=response)

    @torch.no_grad()
    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Rewards of (prompt, response) pairs, higher = better (after ``negate``).

        Args:
            prompts: ``B`` prompts.
            responses: ``B`` responses.

        Returns:
            ``[B]`` float32 tensor on CPU.

        Raises:
            ValueError: if the lengths differ.
        """
        if len(prompts) != len(responses):
            raise ValueError(
                f"HFRewardModel.score: got {len(prompts)} prompts but {len(responses)} responses"
            )
        tok = self.tokenizer
        out: list[torch.Tensor] = []
        for s in range(0, len(prompts), self.batch_size):
            p = [str(x) for x in prompts[s : s + self.batch_size]]
            r = [str(x) for x in responses[s : s + self.batch_size]]
            if self.template == "pair":
                enc = tok(
                    p,
                    r,
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
            else:
                texts = [self.format(a, b) for a, b in zip(p, r, strict=True)]
                enc = encode_rendered(tok, texts, self.max_length)
            logits = self.model(**enc.to(self.device)).logits.float()  # [b, n_out]
            out.append(logits[:, self.label_index].cpu())  # [b]
        scores = torch.cat(out) if out else torch.zeros(0)
        return -scores if self.negate else scores

    def __repr__(self) -> str:
        return f"HFRewardModel({self.model_id!r}, negate={self.negate}, template={self.template!r})"
