// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IntegrityReport} from "./IntegrityReport.sol";

/// @title sealroom session registry
/// @notice Records the integrity reports of sealroom training sessions.
/// The report, its ed25519 signature and the TEE evidence travel in the
/// transaction's calldata only; storage keeps one 32-byte hash per
/// (session, kind), and an event indexes it by session id. A verifier needs
/// nothing but the chain: the event finds the transaction, the calldata holds
/// the bytes, the storage slot proves which bytes were accepted.
/// `completed` and `aborted` are write-once and exclude each other. `opened`
/// may come again while the session is open, once per node attempt: a
/// replacement node (the previous one was lost) signs its own `opened`,
/// whose `prevReportHash` must be the hash of the latest `opened` on chain,
/// so the attempts form one chain no publisher can cut or reorder.
/// @dev Cost discipline: the storage written per report is its hash (the
/// opened report's hash replaces the manifest hash in the same slot, and a
/// replacement's opened hash replaces its predecessor's) and a counter or
/// flag in the session's packed slot. Report fields are read at fixed
/// offsets of `abi.encode(report)` instead of decoding the whole struct.
contract SessionRegistry {
    /// @notice Report kind: all inputs matched their commitments.
    uint8 public constant KIND_OPENED = 1;
    /// @notice Report kind: training finished, model sealed to its owner.
    uint8 public constant KIND_COMPLETED = 2;
    /// @notice Report kind: the session stopped.
    uint8 public constant KIND_ABORTED = 3;
    /// @notice The report format version this registry accepts.
    uint8 public constant REPORT_VERSION = 2;

    /// Byte offsets of fields inside `abi.encode(IntegrityReport)`: one word
    /// of outer offset, then one head word per field in declaration order.
    uint256 private constant OFF_VERSION = 32;
    uint256 private constant OFF_KIND = 64;
    uint256 private constant OFF_SESSION = 96;
    uint256 private constant OFF_MANIFEST = 128;
    uint256 private constant OFF_PREV = 192;
    /// Outer offset + 28 head words (21 fields, the 7 of the inline
    /// `PrivacyAccount`) + the string's length word.
    uint256 private constant MIN_REPORT_LENGTH = 960;
    /// An ed25519 signature.
    uint256 private constant SIGNATURE_LENGTH = 64;

    /// A registered session, packed in one slot.
    struct Session {
        /// Who may publish the session's reports (zero: session unknown).
        address publisher;
        /// Block of `openSession`: where readers start scanning for events.
        uint64 openedBlock;
        /// How many `opened` reports were accepted: one per node attempt
        /// that reached `opened` (a replacement's `opened` adds one). From
        /// the first, the opened slot holds the latest one's hash instead of
        /// the manifest hash. Readers know from it how many `opened` events
        /// to find.
        uint16 openedCount;
        /// Set by an `aborted` report: lets `opened` and `completed` see a
        /// closed session without reading the aborted slot.
        bool aborted;
    }

    /// Sessions by id.
    mapping(bytes32 sessionId => Session) private _sessions;
    /// keccak256(abi.encode(report)) per (session, kind). The `opened` slot
    /// first holds the session's manifest hash (written by `openSession`);
    /// the first `opened` report, whose manifest hash is checked against it,
    /// replaces it, and each replacement attempt's `opened` replaces its
    /// predecessor's (which it names in `prevReportHash`, so the superseded
    /// hash stays provable from the events). Reusing the slot turns the
    /// opened report's storage write from a fresh slot (22,100 gas) into an
    /// update (2,900 gas); the manifest hash stays in the `SessionOpened`
    /// event and in the opened report itself.
    mapping(bytes32 sessionId => mapping(uint8 kind => bytes32 reportHash)) private _reportHash;
    /// Block of each published batch root (zero: never published).
    mapping(bytes32 root => uint256 blockNumber) private _batchBlock;

    /// @notice A session was registered.
    /// @param sessionId The session id (random 32 bytes).
    /// @param manifestHash Hash of the manifest every party signed.
    /// @param publisher The only account allowed to publish the session's reports.
    event SessionOpened(bytes32 indexed sessionId, bytes32 manifestHash, address indexed publisher);

    /// @notice A report was accepted.
    /// @param sessionId The session id.
    /// @param kind 1 = opened, 2 = completed, 3 = aborted.
    /// @param reportHash keccak256 of the report bytes (= abi.encode(report)).
    /// @param prevReportHash The report's link to the previous report of the session.
    event ReportPublished(bytes32 indexed sessionId, uint8 indexed kind, bytes32 reportHash, bytes32 prevReportHash);

    /// @notice A batch of reports was published under one Merkle root.
    /// @param root Root of the OpenZeppelin standard tree over
    /// `(bytes32 sessionId, bytes32 reportHash)`, one leaf per report.
    /// @param reportCount How many reports the batch holds.
    /// @param publisher Who published it.
    event BatchPublished(bytes32 indexed root, uint256 reportCount, address indexed publisher);

    /// @notice This batch root was already published (at `blockNumber`).
    error BatchExists(bytes32 root, uint256 blockNumber);
    /// @notice A batch needs a non-zero root and at least one report.
    error EmptyBatch();

    /// @notice The session id is already registered.
    error SessionExists(bytes32 sessionId);
    /// @notice The publisher address is zero.
    error ZeroPublisher();
    /// @notice The manifest hash is zero.
    error ZeroManifest();
    /// @notice No session with this id was registered.
    error UnknownSession(bytes32 sessionId);
    /// @notice The sender is not the session's publisher.
    error NotPublisher(bytes32 sessionId, address sender, address publisher);
    /// @notice The kind is not 1, 2 or 3.
    error InvalidKind(uint8 kind);
    /// @notice A report of this kind was already published for the session
    /// (for `opened`: this very report is the latest `opened`).
    /// @param reportHash The hash already stored (equal to yours: a retry, not a conflict).
    error ReportExists(bytes32 sessionId, uint8 kind, bytes32 reportHash);
    /// @notice `completed` needs an `opened` report first.
    error NotOpened(bytes32 sessionId);
    /// @notice The session already has a terminal report (completed or aborted).
    error SessionClosed(bytes32 sessionId, uint8 terminalKind);
    /// @notice The report bytes are not an `abi.encode(IntegrityReport)`.
    error MalformedReport(uint256 length);
    /// @notice The report's version is not `REPORT_VERSION`.
    error UnsupportedVersion(uint256 version);
    /// @notice A report field disagrees with the call or with the registry.
    /// @param field 1 = kind, 2 = sessionId, 3 = manifestHash, 5 = prevReportHash (the field's index in the struct).
    error FieldMismatch(uint8 field, bytes32 expected, bytes32 actual);
    /// @notice The signature is not 64 bytes (ed25519).
    error MalformedSignature(uint256 length);

    /// @notice Registers a session. Permissionless and first-come: the id is
    /// random and the manifest hash is checked against every report, so a
    /// squatter can block an id but never publish under it.
    /// @param sessionId The session id from the manifest.
    /// @param manifestHash Hash of the canonical manifest.
    /// @param publisher The account allowed to publish the session's reports.
    function openSession(bytes32 sessionId, bytes32 manifestHash, address publisher) external {
        if (publisher == address(0)) revert ZeroPublisher();
        if (manifestHash == bytes32(0)) revert ZeroManifest();
        if (_sessions[sessionId].publisher != address(0)) revert SessionExists(sessionId);
        _sessions[sessionId] =
            Session({publisher: publisher, openedBlock: uint64(block.number), openedCount: 0, aborted: false});
        _reportHash[sessionId][KIND_OPENED] = manifestHash;
        emit SessionOpened(sessionId, manifestHash, publisher);
    }

    /// @notice Publishes a signed integrity report: `completed` and
    /// `aborted` once per session, `opened` once per node attempt.
    /// @dev Checks, reading the report at fixed offsets: version, kind and
    /// session id equal the call's; `prevReportHash` equals the stored
    /// (latest) `opened` hash, or zero while the session has none: zero for
    /// the first `opened`, the previous attempt's `opened` for a
    /// replacement's `opened`, the latest `opened` for `completed` and
    /// `aborted` (zero when an `aborted` comes without any `opened`: the
    /// loader aborts before `opened` when an input fails its check); the
    /// manifest hash equals the registered one on the session's first
    /// report only (later ones, a replacement's `opened` included, are bound
    /// to it through `prevReportHash`, and verifiers check their manifest
    /// hash off chain: the registered one left storage with the first
    /// `opened`); a retried `opened` identical to the latest is
    /// `ReportExists`; `completed` and `aborted` exclude each other and
    /// nothing follows either. `evidence` is opaque to the contract:
    /// sealroom puts an envelope there (raw evidence, certificates,
    /// collateral, manifest) on each node attempt's first report only;
    /// verifiers check keccak256(raw evidence) against the report's
    /// `evidenceHash`, and the ed25519 signature, off chain (the EVM has no
    /// ed25519 precompile).
    /// @param sessionId The session id.
    /// @param kind 1 = opened, 2 = completed, 3 = aborted.
    /// @param report abi.encode(IntegrityReport); only its hash is stored.
    /// @param signature The node's ed25519 signature over the report hash (64 bytes).
    /// @param evidence The node's TEE evidence envelope, opaque here (empty on a node's later reports).
    function publishReport(
        bytes32 sessionId,
        uint8 kind,
        bytes calldata report,
        bytes calldata signature,
        bytes calldata evidence
    ) external {
        Session memory session = _sessions[sessionId];
        if (session.publisher == address(0)) revert UnknownSession(sessionId);
        if (msg.sender != session.publisher) revert NotPublisher(sessionId, msg.sender, session.publisher);
        if (kind < KIND_OPENED || kind > KIND_ABORTED) revert InvalidKind(kind);
        bool opened = session.openedCount != 0;
        bytes32 reportHash = keccak256(report);
        if (kind == KIND_OPENED) {
            // A retry of the latest opened; another one is a new attempt,
            // checked below (its link, and that the session is still open).
            if (opened && _reportHash[sessionId][KIND_OPENED] == reportHash) {
                revert ReportExists(sessionId, kind, reportHash);
            }
        } else if (_reportHash[sessionId][kind] != bytes32(0)) {
            revert ReportExists(sessionId, kind, _reportHash[sessionId][kind]);
        }
        if (session.aborted) revert SessionClosed(sessionId, KIND_ABORTED);
        if (signature.length != SIGNATURE_LENGTH) revert MalformedSignature(signature.length);
        bytes32 prev = _checkReport(sessionId, kind, report, opened);
        // Calldata only: read by verifiers from the transaction, never here.
        evidence;

        _reportHash[sessionId][kind] = reportHash;
        // Checked arithmetic: the 65,536th attempt reverts (Panic 0x11).
        if (kind == KIND_OPENED) _sessions[sessionId].openedCount = session.openedCount + 1;
        else if (kind == KIND_ABORTED) _sessions[sessionId].aborted = true;
        emit ReportPublished(sessionId, kind, reportHash, prev);
    }

    /// @notice Publishes many signed reports (of any sessions) in one
    /// transaction under one Merkle root: the amortised mode for
    /// publishers with many sessions. Storage: the root's block only.
    /// @dev Unlike `publishReport`, nothing of the reports is checked here:
    /// their bytes travel in `reports` (calldata; sealroom encodes
    /// `abi.encode((bytes32 sessionId, bytes report, bytes signature)[])`),
    /// and verifiers recompute the root from them, check each report's
    /// signature, kind order and `prevReportHash` links off chain, and prove
    /// one report's inclusion with `verifyInclusion` against this root. The
    /// session state machine (write-once `completed`/`aborted`, links) is
    /// therefore not enforced on chain for batched reports.
    /// @param root The standard-tree root over `(sessionId, keccak256(report))`.
    /// @param reportCount How many reports `reports` holds.
    /// @param reports The encoded reports and signatures, opaque here.
    function publishBatch(bytes32 root, uint256 reportCount, bytes calldata reports) external {
        if (root == bytes32(0) || reportCount == 0) revert EmptyBatch();
        uint256 seen = _batchBlock[root];
        if (seen != 0) revert BatchExists(root, seen);
        // Calldata only: read by verifiers from the transaction, never here.
        reports;
        _batchBlock[root] = block.number;
        emit BatchPublished(root, reportCount, msg.sender);
    }

    /// @notice The block a batch root was published in (zero when never).
    /// @param root The batch root.
    /// @return The block number.
    function batchBlock(bytes32 root) external view returns (uint256) {
        return _batchBlock[root];
    }

    /// @notice A registered session (all zero when unknown).
    /// @param sessionId The session id.
    /// @return publisher The only account allowed to publish the session's reports.
    /// @return manifestHash The registered manifest hash while no `opened`
    /// report exists; zero afterwards (it is then in the `SessionOpened`
    /// event of block `openedBlock` and in the opened report).
    /// @return openedBlock The block of `openSession` (readers scan events from there).
    /// @return opened Whether an `opened` report was published.
    /// @return aborted Whether an `aborted` report was published.
    /// @return openedCount How many `opened` reports were published (one per
    /// node attempt that reached `opened`; more than one after fail-over).
    function sessionOf(bytes32 sessionId)
        external
        view
        returns (
            address publisher,
            bytes32 manifestHash,
            uint64 openedBlock,
            bool opened,
            bool aborted,
            uint16 openedCount
        )
    {
        Session memory s = _sessions[sessionId];
        opened = s.openedCount != 0;
        manifestHash = opened ? bytes32(0) : _reportHash[sessionId][KIND_OPENED];
        return (s.publisher, manifestHash, s.openedBlock, opened, s.aborted, s.openedCount);
    }

    /// @notice The stored keccak256 of a session's report of one kind (zero
    /// when none); for `opened`, the latest attempt's.
    /// @param sessionId The session id.
    /// @param kind 1 = opened, 2 = completed, 3 = aborted.
    /// @return The report hash.
    function reportHashOf(bytes32 sessionId, uint8 kind) external view returns (bytes32) {
        if (kind == KIND_OPENED && _sessions[sessionId].openedCount == 0) return bytes32(0);
        return _reportHash[sessionId][kind];
    }

    /// @notice keccak256(abi.encode(report)) computed by the EVM, so tests can
    /// prove the Rust encoding equals Solidity's.
    /// @param report The report.
    /// @return The report hash.
    function hashReport(IntegrityReport calldata report) external pure returns (bytes32) {
        return keccak256(abi.encode(report));
    }

    /// @notice Verifies an inclusion proof of an OpenZeppelin standard Merkle
    /// tree (sorted-pair keccak256), e.g. a party's dataset in a session's
    /// inputs root.
    /// @param root The tree root.
    /// @param leaf The leaf hash (for standard trees: keccak256(bytes.concat(keccak256(abi.encode(values))))).
    /// @param proof The sibling hashes from the leaf up.
    /// @return True when the proof leads from `leaf` to `root`.
    function verifyInclusion(bytes32 root, bytes32 leaf, bytes32[] calldata proof) external pure returns (bool) {
        bytes32 node = leaf;
        for (uint256 i = 0; i < proof.length; ++i) {
            bytes32 sibling = proof[i];
            node = node < sibling
                ? keccak256(abi.encodePacked(node, sibling))
                : keccak256(abi.encodePacked(sibling, node));
        }
        return node == root;
    }

    /// Checks the report's fields against the call and the registry; returns
    /// its `prevReportHash`.
    function _checkReport(bytes32 sessionId, uint8 kind, bytes calldata report, bool opened)
        private
        view
        returns (bytes32 prev)
    {
        if (report.length < MIN_REPORT_LENGTH || uint256(bytes32(report[0:32])) != 32) {
            revert MalformedReport(report.length);
        }
        uint256 version = uint256(bytes32(report[OFF_VERSION:OFF_VERSION + 32]));
        if (version != REPORT_VERSION) revert UnsupportedVersion(version);
        _expect(1, bytes32(uint256(kind)), bytes32(report[OFF_KIND:OFF_KIND + 32]));
        _expect(2, sessionId, bytes32(report[OFF_SESSION:OFF_SESSION + 32]));
        // The opened slot: the manifest hash until the first `opened`, then
        // the latest `opened` report's hash.
        bytes32 openedSlot = _reportHash[sessionId][KIND_OPENED];
        bytes32 expectedPrev;
        if (opened) {
            // Linked to the latest opened: completed or aborted closing the
            // attempt, or a replacement's opened starting the next one. The
            // manifest hash was checked on the first opened; later reports
            // are bound to it through the links.
            expectedPrev = openedSlot;
            // Nothing follows completed (a completed after completed was
            // ReportExists already).
            if (kind != KIND_COMPLETED && _reportHash[sessionId][KIND_COMPLETED] != bytes32(0)) {
                revert SessionClosed(sessionId, KIND_COMPLETED);
            }
        } else {
            // The session's first report: opened, or an aborted without one.
            if (kind == KIND_COMPLETED) revert NotOpened(sessionId);
            _expect(3, openedSlot, bytes32(report[OFF_MANIFEST:OFF_MANIFEST + 32]));
        }
        prev = bytes32(report[OFF_PREV:OFF_PREV + 32]);
        _expect(5, expectedPrev, prev);
    }

    /// Reverts with `FieldMismatch` unless `expected == actual`.
    function _expect(uint8 field, bytes32 expected, bytes32 actual) private pure {
        if (expected != actual) revert FieldMismatch(field, expected, actual);
    }
}
