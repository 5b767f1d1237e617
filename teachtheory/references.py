"""The papers teachtheory implements and checks: one entry each, cited by key everywhere.

Claims give their source as ``cite(key) + ", Sec. 3.4, Thm 1"``; the docs' references page and the
BibTeX file are generated from :data:`REFERENCES`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REFERENCES", "Reference", "cite", "full_citation"]


@dataclass(frozen=True)
class Reference:
    """A paper: authors (full list), title, venue and year, and the short form used in sources."""

    key: str
    authors: tuple[str, ...]
    title: str
    venue: str
    year: int
    short: str

    def full(self) -> str:
        """Authors, "Title", Venue Year."""
        names = ", ".join(self.authors[:-1]) + (" and " if len(self.authors) > 1 else "") + self.authors[-1]
        return f'{names}, "{self.title}", {self.venue}, {self.year}.'


_ENTRIES = (
    Reference("last", ("Weiyang Liu", "Zhen Liu", "Hanchen Wang", "Liam Paull", "Bernhard Schölkopf", "Adrian Weller"),
              "Iterative Teaching by Label Synthesis", "Advances in Neural Information Processing Systems (NeurIPS)",
              2021, "Liu et al., NeurIPS 2021 (LAST)"),
    Reference("dht", ("Zeju Qiu", "Weiyang Liu", "Tim Z. Xiao", "Zhen Liu", "Umang Bhatt", "Yucen Luo", "Adrian Weller",
                      "Bernhard Schölkopf"),
              "Iterative Teaching by Data Hallucination",
              "International Conference on Artificial Intelligence and Statistics (AISTATS)", 2023,
              "Qiu, Liu et al., AISTATS 2023 (DHT)"),
    Reference("imt", ("Weiyang Liu", "Bo Dai", "Ahmad Humayun", "Charlene Tay", "Chen Yu", "Linda B. Smith",
                      "James M. Rehg", "Le Song"),
              "Iterative Machine Teaching", "International Conference on Machine Learning (ICML)", 2017,
              "Liu et al., ICML 2017 (IMT)"),
    Reference("l2t-dln", ("Zhaoyang Hai", "Liyuan Pan", "Xiabi Liu", "Zhengzheng Liu", "Mirna Yunita"),
              "L2T-DLN: Learning to Teach with Dynamic Loss Network",
              "Advances in Neural Information Processing Systems (NeurIPS)", 2023,
              "Hai et al., NeurIPS 2023 (L2T-DLN)"),
    Reference("agd", ("Songtao Lu", "Mingyi Hong", "Zhengdao Wang"),
              "On the Sublinear Convergence of Randomly Perturbed Alternating Gradient Descent to Second Order "
              "Stationary Solutions", "arXiv:1802.10418", 2018, "Lu, Hong & Wang, arXiv 2018"),
    Reference("tian-talk", ("Yuandong Tian",), "Understanding Deep Models with Teacher-student Setting",
              "invited talk, Facebook AI Research", 2020, "Tian, teacher-student talk"),
    Reference("tian2017", ("Yuandong Tian",),
              "An Analytical Formula of Population Gradient for two-layered ReLU network and its Applications in "
              "Convergence and Critical Point Analysis", "International Conference on Machine Learning (ICML)", 2017,
              "Tian, ICML 2017"),
    Reference("tian2020", ("Yuandong Tian",),
              "Student Specialization in Deep Rectified Networks With Finite Width and Input Dimension",
              "International Conference on Machine Learning (ICML)", 2020, "Tian, ICML 2020"),
    Reference("tian-ssl", ("Yuandong Tian", "Lantao Yu", "Xinlei Chen", "Surya Ganguli"),
              "Understanding Self-Supervised Learning with Dual Deep Networks", "arXiv:2010.00578", 2020,
              "Tian, Yu, Chen & Ganguli, arXiv 2020"),
    Reference("saad-solla", ("David Saad", "Sara A. Solla"), "On-line learning in soft committee machines",
              "Physical Review E 52, 4225", 1995, "Saad & Solla, Phys. Rev. E 1995"),
    Reference("riegler-biehl", ("Peter Riegler", "Michael Biehl"),
              "On-line backpropagation in two-layered neural networks", "Journal of Physics A 28, L507", 1995,
              "Riegler & Biehl, J. Phys. A 1995"),
    Reference("goldt", ("Sebastian Goldt", "Madhu S. Advani", "Andrew M. Saxe", "Florent Krzakala", "Lenka Zdeborová"),
              "Dynamics of stochastic gradient descent for two-layer neural networks in the teacher-student setup",
              "Advances in Neural Information Processing Systems (NeurIPS)", 2019, "Goldt et al., NeurIPS 2019"),
    Reference("byol", ("Jean-Bastien Grill", "Florian Strub", "Florent Altché", "Corentin Tallec",
                       "Pierre H. Richemond", "Elena Buchatskaya", "Carl Doersch", "Bernardo Avila Pires",
                       "Zhaohan Daniel Guo",
                       "Mohammad Gheshlaghi Azar", "Bilal Piot", "Koray Kavukcuoglu", "Rémi Munos", "Michal Valko"),
              "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
              "Advances in Neural Information Processing Systems (NeurIPS)", 2020, "Grill et al., NeurIPS 2020 (BYOL)"),
    Reference("directpred", ("Yuandong Tian", "Xinlei Chen", "Surya Ganguli"),
              "Understanding Self-Supervised Learning Dynamics without Contrastive Pairs",
              "International Conference on Machine Learning (ICML)", 2021,
              "Tian, Chen, Ganguli, ICML 2021 (DirectPred)"),
    Reference("simclr", ("Ting Chen", "Simon Kornblith", "Mohammad Norouzi", "Geoffrey Hinton"),
              "A Simple Framework for Contrastive Learning of Visual Representations",
              "International Conference on Machine Learning (ICML)", 2020, "Chen et al., ICML 2020 (SimCLR)"),
    Reference("yang-robust", ("Zhuolin Yang", "Zhaoxi Chen", "Tiffany Cai", "Xinyun Chen", "Bo Li", "Yuandong Tian"),
              "Understanding Robustness in Teacher-Student Setting: A New Perspective",
              "International Conference on Artificial Intelligence and Statistics (AISTATS)", 2021,
              "Yang et al., AISTATS 2021"),
    Reference("madry", ("Aleksander Madry", "Aleksandar Makelov", "Ludwig Schmidt", "Dimitris Tsipras", "Adrian Vladu"),
              "Towards Deep Learning Models Resistant to Adversarial Attacks",
              "International Conference on Learning Representations (ICLR)", 2018, "Madry et al., ICLR 2018 (PGD)"),
    Reference("ccat", ("David Stutz", "Matthias Hein", "Bernt Schiele"),
              "Confidence-Calibrated Adversarial Training: Generalizing to Unseen Attacks",
              "International Conference on Machine Learning (ICML)", 2020, "Stutz, Hein & Schiele, ICML 2020 (CCAT)"),
    Reference("reinforce", ("Ronald J. Williams",),
              "Simple Statistical Gradient-Following Algorithms for Connectionist Reinforcement Learning",
              "Machine Learning 8", 1992, "Williams, Machine Learning 1992 (REINFORCE)"),
    # dataset distillation
    Reference("dd", ("Tongzhou Wang", "Jun-Yan Zhu", "Antonio Torralba", "Alexei A. Efros"), "Dataset Distillation",
              "arXiv:1811.10959", 2018, "Wang et al., arXiv 2018 (DD)"),
    Reference("sldd", ("Ilia Sucholutsky", "Matthias Schonlau"),
              "Soft-Label Dataset Distillation and Text Dataset Distillation",
              "International Joint Conference on Neural Networks (IJCNN)", 2021,
              "Sucholutsky & Schonlau, IJCNN 2021 (SLDD, TDD)"),
    Reference("ld", ("Ondrej Bohdal", "Yongxin Yang", "Timothy Hospedales"),
              "Flexible Dataset Distillation: Learn Labels Instead of Images",
              "NeurIPS 2020 Workshop on Meta-Learning", 2020, "Bohdal, Yang & Hospedales, NeurIPS-W 2020 (LD)"),
    Reference("gtn", ("Felipe Petroski Such", "Aditya Rawal", "Joel Lehman", "Kenneth O. Stanley", "Jeff Clune"),
              "Generative Teaching Networks: Accelerating Neural Architecture Search by Learning to Generate "
              "Synthetic Training Data", "International Conference on Machine Learning (ICML)", 2020,
              "Such et al., ICML 2020 (GTN)"),
    Reference("mnemonics", ("Yaoyao Liu", "Yuting Su", "An-An Liu", "Bernt Schiele", "Qianru Sun"),
              "Mnemonics Training: Multi-Class Incremental Learning without Forgetting",
              "IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)", 2020,
              "Liu et al., CVPR 2020 (Mnemonics)"),
    Reference("kip", ("Timothy Nguyen", "Zhourong Chen", "Jaehoon Lee"),
              "Dataset Meta-Learning from Kernel Ridge-Regression",
              "International Conference on Learning Representations (ICLR)", 2021,
              "Nguyen, Chen & Lee, ICLR 2021 (KIP)"),
    Reference("dc", ("Bo Zhao", "Konda Reddy Mopuri", "Hakan Bilen"), "Dataset Condensation with Gradient Matching",
              "International Conference on Learning Representations (ICLR)", 2021,
              "Zhao, Mopuri & Bilen, ICLR 2021 (DC)"),
    Reference("dsa", ("Bo Zhao", "Hakan Bilen"), "Dataset Condensation with Differentiable Siamese Augmentation",
              "International Conference on Machine Learning (ICML)", 2021, "Zhao & Bilen, ICML 2021 (DSA)"),
    Reference("dm", ("Bo Zhao", "Hakan Bilen"), "Dataset Condensation with Distribution Matching",
              "IEEE/CVF Winter Conference on Applications of Computer Vision (WACV)", 2023,
              "Zhao & Bilen, WACV 2023 (DM)"),
    Reference("mtt", ("George Cazenavette", "Tongzhou Wang", "Antonio Torralba", "Alexei A. Efros", "Jun-Yan Zhu"),
              "Dataset Distillation by Matching Training Trajectories",
              "IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)", 2022,
              "Cazenavette et al., CVPR 2022 (MTT)"),
    Reference("mnist1d", ("Sam Greydanus",), "Scaling down Deep Learning", "arXiv:2011.14439", 2020,
              "Greydanus, arXiv 2020 (MNIST-1D)"),
    Reference("cho-saul", ("Youngmin Cho", "Lawrence K. Saul"), "Kernel Methods for Deep Learning",
              "Advances in Neural Information Processing Systems (NeurIPS)", 2009, "Cho & Saul, NeurIPS 2009"),
    Reference("nngp", ("Jaehoon Lee", "Yasaman Bahri", "Roman Novak", "Samuel S. Schoenholz", "Jeffrey Pennington",
                       "Jascha Sohl-Dickstein"), "Deep Neural Networks as Gaussian Processes",
              "International Conference on Learning Representations (ICLR)", 2018, "Lee et al., ICLR 2018 (NNGP)"),
    Reference("ntk", ("Arthur Jacot", "Franck Gabriel", "Clément Hongler"),
              "Neural Tangent Kernel: Convergence and Generalization in Neural Networks",
              "Advances in Neural Information Processing Systems (NeurIPS)", 2018,
              "Jacot, Gabriel & Hongler, NeurIPS 2018 (NTK)"),
    Reference("herding", ("Max Welling",), "Herding Dynamical Weights to Learn",
              "International Conference on Machine Learning (ICML)", 2009, "Welling, ICML 2009 (herding)"),
)

REFERENCES: dict[str, Reference] = {r.key: r for r in _ENTRIES}


def cite(key: str, where: str = "") -> str:
    """The short citation of paper ``key`` (e.g. ``Liu et al., NeurIPS 2021 (LAST)``), with ``where`` appended.

    Raises:
        KeyError: for an unknown key (the message lists the known ones).

    Example:
        >>> cite("last")
        'Liu et al., NeurIPS 2021 (LAST)'
        >>> cite("last", "Eq. (7)")
        'Liu et al., NeurIPS 2021 (LAST), Eq. (7)'
    """
    if key not in REFERENCES:
        raise KeyError(f"unknown reference {key!r}; known: {', '.join(REFERENCES)}")
    short = REFERENCES[key].short
    return f"{short}, {where}" if where else short


def full_citation(key: str) -> str:
    """The full citation of paper ``key``: all authors, title, venue and year."""
    return cite(key) and REFERENCES[key].full()
