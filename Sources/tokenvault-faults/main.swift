print("tokenvault-faults: not written yet")
