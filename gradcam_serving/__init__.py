"""gradcam-serving: Grad-CAM as a TensorFlow Serving signature.

The top-level package stays free of TensorFlow so that ``gradcam_serving.client``
imports fast; the exporter and server are imported from their subpackages.
"""

from gradcam_serving import errors, signatures

__all__ = ["__version__", "errors", "signatures"]
__version__ = "0.1.0"
