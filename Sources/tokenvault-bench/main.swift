print("tokenvault-bench: not written yet")
