"""libggml, as bundled in llama-cpp-python, driven through ctypes."""
