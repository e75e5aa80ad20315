"""The paper's attribution methods as transformers models, registered with the Auto classes
when this package is imported, so that checkpoints load without remote code:

    import methods  # noqa: F401  (registers)
    model = AutoModelForImageClassification.from_pretrained("ORG/iab-dct-cnn")
"""

from transformers import AutoConfig, AutoModelForImageClassification

from methods.dct import DCTConfig, DCTForImageClassification

AutoConfig.register(DCTConfig.model_type, DCTConfig, exist_ok=True)
AutoModelForImageClassification.register(DCTConfig, DCTForImageClassification, exist_ok=True)

__all__ = ["DCTConfig", "DCTForImageClassification"]
