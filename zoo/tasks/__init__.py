"""LightningModules, one per problem type. Each takes ``arch: str`` and builds the model by name."""

from zoo.tasks.base import ZooTask
from zoo.tasks.bert_pretrain import BERTPretrain as BERTPretrain
from zoo.tasks.classification import Classification
from zoo.tasks.detection import Detection as Detection
from zoo.tasks.language_model import LanguageModel
from zoo.tasks.nli import NLI as NLI
from zoo.tasks.regression import Regression
from zoo.tasks.segmentation import Segmentation as Segmentation
from zoo.tasks.seq2seq import Seq2Seq as Seq2Seq
from zoo.tasks.word2vec import Word2Vec as Word2Vec

__all__ = ["ZooTask", "Classification", "Regression", "LanguageModel"]
