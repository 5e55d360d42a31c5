"""LightningDataModules, one per data set; each exposes the facts ``zoo.fit`` links to the task."""

from datamodules.airfoil import Airfoil as Airfoil
from datamodules.base import ZooDataModule
from datamodules.california_house_prices import CaliforniaHousePrices as CaliforniaHousePrices
from datamodules.cifar10 import CIFAR10
from datamodules.cowboy import CowboyOutfits as CowboyOutfits
from datamodules.detection import Bananas as Bananas
from datamodules.detection import CocoDetection as CocoDetection
from datamodules.detection import YoloDetection as YoloDetection
from datamodules.fashion_mnist import FashionMNIST
from datamodules.house_prices import HousePrices
from datamodules.kaggle_images import DogBreeds, KaggleCIFAR10, Leaves
from datamodules.language_model import LanguageModelData, PennTreebank, TimeMachine, WikiText2
from datamodules.sine import NoisySine
from datamodules.snli import SNLI as SNLI
from datamodules.synthetic import EdgeImage, NadarayaWatsonData, SyntheticPolynomial, SyntheticRegression
from datamodules.translation import FraEng as FraEng
from datamodules.voc import SegmentationFolder as SegmentationFolder
from datamodules.voc import VOCSegmentation as VOCSegmentation
from datamodules.wikitext_bert import WikiText2BERT as WikiText2BERT
from datamodules.word2vec import PTBWord2Vec as PTBWord2Vec

__all__ = ["ZooDataModule", "FashionMNIST", "SyntheticRegression", "SyntheticPolynomial", "EdgeImage",
           "NadarayaWatsonData",
           "LanguageModelData", "TimeMachine", "PennTreebank", "WikiText2", "NoisySine", "HousePrices",
           "CIFAR10", "Leaves", "DogBreeds", "KaggleCIFAR10"]
