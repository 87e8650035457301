"""``python -m gradcam_serving.server --port=8500 --model_name=m --model_base_path=/models/m``."""

import sys

from gradcam_serving.server._main import main

if __name__ == "__main__":
    sys.exit(main())
