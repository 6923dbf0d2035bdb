"""weakseg: segmentation with scarce or cross-modality labels."""
