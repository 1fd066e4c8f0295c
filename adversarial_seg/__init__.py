"""adversarial_seg: medical-image segmentation with adversarial training as a first-class switch."""

__version__ = "0.1.0"
