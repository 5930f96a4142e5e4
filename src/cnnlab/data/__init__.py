"""Data sets: readers of the official formats (pure NumPy, re-exported here) and, in modules that
import torch and are imported explicitly, the device-resident loader (`cnnlab.data.loaders`),
batch augmentation (`cnnlab.data.augment`), image folders (`cnnlab.data.imagefolder`) with the papers'
pipelines (`cnnlab.data.pipelines`), and test-time views (`cnnlab.data.tta`)."""

from cnnlab.data.info import DATASETS, DatasetInfo, dataset_info
from cnnlab.data.readers import default_data_dir, load_arrays, read_cifar_bin, read_cifar_py, read_idx

__all__ = ["DATASETS", "DatasetInfo", "dataset_info", "default_data_dir", "load_arrays", "read_cifar_bin",
           "read_cifar_py", "read_idx"]
