/// An RFC 9457 problem document: the body of every error status
/// (`application/problem+json`).
public struct Problem: Hashable, Sendable, Codable {
    /// A URI naming the kind of problem, or "about:blank" when the status says it all.
    public var type: String
    public var title: String
    public var status: Int
    /// This occurrence, e.g. "no SR-IOV PF at 0000:09:00.0".
    public var detail: String?
    /// The request field at fault, for 400s.
    public var field: String?
    public var instance: String?

    public init(
        type: String = "about:blank", title: String, status: Int, detail: String? = nil, field: String? = nil,
        instance: String? = nil
    ) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.field = field
        self.instance = instance
    }

    enum CodingKeys: String, CodingKey {
        case type, title, status, detail, field, instance
    }

    /// Every member is optional in a problem document (RFC 9457 §3.1).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decodeIfPresent(String.self, forKey: .type) ?? "about:blank"
        title = try c.decodeIfPresent(String.self, forKey: .title) ?? ""
        status = try c.decodeIfPresent(Int.self, forKey: .status) ?? 0
        detail = try c.decodeIfPresent(String.self, forKey: .detail)
        field = try c.decodeIfPresent(String.self, forKey: .field)
        instance = try c.decodeIfPresent(String.self, forKey: .instance)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode(title, forKey: .title)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(detail, forKey: .detail)
        try c.encodeIfPresent(field, forKey: .field)
        try c.encodeIfPresent(instance, forKey: .instance)
    }

    /// "title: detail", or the title alone.
    public var summary: String { detail.map { "\(title): \($0)" } ?? title }
}

/// A problem document that also says what happened to each setting group
/// of a VF change that failed: `{...problem, "results": [...]}`.
public struct FailedVFChange: Hashable, Sendable, Codable {
    public var problem: Problem
    public var results: [SettingResult]

    public init(problem: Problem, results: [SettingResult]) {
        self.problem = problem
        self.results = results
    }

    enum CodingKeys: String, CodingKey { case results }

    public init(from decoder: any Decoder) throws {
        problem = try Problem(from: decoder)
        results = try decoder.container(keyedBy: CodingKeys.self).decode([SettingResult].self, forKey: .results)
    }

    public func encode(to encoder: any Encoder) throws {
        try problem.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(results, forKey: .results)
    }
}
